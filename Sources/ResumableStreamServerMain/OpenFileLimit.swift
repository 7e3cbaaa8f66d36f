#if canImport(Glibc)
import Glibc
#endif

/// Every follower is a socket: a server started with the usual soft limit of 1,024 open files
/// could not hold the readers `--max-readers` allows. The soft limit is raised to the hard one
/// (which only the caller may raise), as servers do at start.
enum OpenFileLimit {
    /// The soft limit after raising it, or `nil` when it could not be read or set.
    static func raise() -> (before: UInt64, after: UInt64)? {
        #if canImport(Glibc)
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        let before = UInt64(limit.rlim_cur)
        guard limit.rlim_cur < limit.rlim_max else { return (before, before) }
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (before, before) }
        return (before, UInt64(limit.rlim_cur))
        #else
        return nil
        #endif
    }
}
