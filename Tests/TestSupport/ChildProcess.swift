import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A process of the test's own (a redis-server, an instance of the server), its output and errors
/// in one log file. Started with `posix_spawn` rather than Foundation's `Process`, for two
/// reasons. `Process.run()` on Linux reads `/proc/self/fd` with an over-read that crashes the test
/// process now and then when many descriptors are open (it did in CI, starting a test cluster's
/// watchdog). And with `posix_spawn` the child starts with no
/// signal blocked and every handler at its default whatever thread starts it (a thread of the
/// test process may block SIGTERM, and a child inherits that mask), so the signals a test sends
/// reach it as they would in production.
public final class ChildProcess: Sendable {
    /// How a process ended.
    public enum Termination: Equatable, CustomStringConvertible, Sendable {
        case exited(Int32)
        case signalled(Int32)

        public var description: String {
            switch self {
            case .exited(let status): "exited with status \(status)"
            case .signalled(let signal): "killed by signal \(signal)"
            }
        }
    }

    public let name: String
    public let pid: pid_t
    public let logPath: String
    /// Whether the process leads a process group of its own, which is killed with it: for
    /// programs that start processes of their own (nginx's workers, Chromium's renderers).
    public let leadsGroup: Bool
    private let termination = Mutex<Termination?>(nil)

    private init(name: String, pid: pid_t, logPath: String, leadsGroup: Bool) {
        self.name = name
        self.pid = pid
        self.logPath = logPath
        self.leadsGroup = leadsGroup
    }

    /// Starts `executable` with `arguments`; its stdout and stderr go to `logPath` (appended).
    /// `descriptors` are given to the child as its descriptors 3, 4 and on, in that order (the
    /// pipes of Chromium's `--remote-debugging-pipe`); `leadsGroup` puts it in a process group of
    /// its own. `environment` (`NAME=value`) is added to what the child inherits.
    public static func spawn(name: String, executable: String, arguments: [String], logPath: String, descriptors: [CInt] = [], leadsGroup: Bool = false, environment: [String] = []) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Copied above the numbers they go to first, so that no dup2 overwrites another's source;
        // the copies close on exec, and dup2 clears that flag on the numbers the child gets.
        var copies: [CInt] = []
        defer { copies.forEach { close($0) } }
        for descriptor in descriptors {
            let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 10)
            guard copy >= 0 else { throw SpawnFailed(executable: executable, code: errno) }
            copies.append(copy)
        }
        for (index, copy) in copies.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, copy, 3 + CInt(index))
        }
        // None of the test process's descriptors (its sockets, another child's pipes) leak into
        // the child, where they would outlive the test's own use of them.
        if let closeFrom = closeFrom { _ = closeFrom(&actions, 3 + CInt(descriptors.count)) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (leadsGroup ? POSIX_SPAWN_SETPGROUP : 0)))
        if leadsGroup { posix_spawnattr_setpgroup(&attributes, 0) }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp = (childEnvironment() + environment).map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }

        var pid = pid_t()
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw SpawnFailed(executable: executable, code: result) }
        return ChildProcess(name: name, pid: pid, logPath: logPath, leadsGroup: leadsGroup)
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift does not
    /// import (it is a GNU extension); looked up at run time, `nil` on an older glibc.
    private static let closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// The test's environment minus what would configure the child behind its flags' back (the
    /// server reads an environment variable for every flag the test does not give).
    private static func childEnvironment() -> [String] {
        let kept = ["PATH", "HOME", "LANG", "LD_LIBRARY_PATH", "TMPDIR"]
        let environment = ProcessInfo.processInfo.environment
        return kept.compactMap { name in environment[name].map { "\(name)=\($0)" } }
    }

    public func signal(_ signal: Int32) {
        guard termination.withLock({ $0 == nil }) else { return }
        kill(pid, signal)
    }

    /// How the process ended, if it has (it is reaped then).
    public func poll() -> Termination? {
        termination.withLock { termination in
            if let termination { return termination }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            guard result == pid else { return nil }
            termination = Self.termination(status)
            return termination
        }
    }

    /// Waits for the process to end, up to `timeout`; `nil` if it still runs. Polled: a child's
    /// exit is state only `waitpid` sees.
    public func termination(within timeout: Duration) async -> Termination? {
        let deadline = ContinuousClock.now + timeout
        var interval = Duration.milliseconds(1)
        while true {
            if let termination = poll() { return termination }
            guard ContinuousClock.now < deadline else { return nil }
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return poll() }
            interval = min(interval * 2, .milliseconds(20))
        }
    }

    public var isRunning: Bool { poll() == nil }

    /// Waits for the process to end, blocking the calling thread: for short commands (openssl)
    /// whose callers cannot await.
    public func waitForExit() -> Termination {
        termination.withLock { termination in
            if let termination { return termination }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1, errno == EINTR {}
            let ended = Self.termination(status)
            termination = ended
            return ended
        }
    }

    /// SIGKILL (which also ends a stopped process), to its whole group if it leads one, and reaps
    /// it. Synchronous, so that a cleanup that cannot await (a `defer`) can call it.
    public func killAndReap() {
        termination.withLock { termination in
            if leadsGroup { kill(-pid, SIGKILL) }
            guard termination == nil else { return }
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1, errno == EINTR {}
            termination = Self.termination(status)
        }
    }

    /// The last `lines` lines of the process's log.
    public func logTail(lines: Int = 40) -> String {
        guard let data = FileManager.default.contents(atPath: logPath) else { return "(no log)" }
        let text = String(decoding: data, as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    public var log: String {
        FileManager.default.contents(atPath: logPath).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    private static func termination(_ status: Int32) -> Termination {
        // WIFEXITED, WEXITSTATUS, WTERMSIG: macros that Swift does not import.
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    public struct SpawnFailed: Error, CustomStringConvertible {
        public let executable: String
        public let code: Int32
        public var description: String { "could not start \(executable): \(String(cString: strerror(code)))" }
    }
}
