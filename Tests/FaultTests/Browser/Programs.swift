import Foundation

/// Programs the browser tests run that the package does not build, and the repository's own
/// files they use.
enum Programs {
    /// The repository's root: three folders above this file's.
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `name` on PATH, else the first of `fallbacks` that is an executable file; an error that says
    /// how to get it otherwise.
    static func find(_ name: String, fallbacks: [String] = []) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let candidates = path.split(separator: ":").map { "\($0)/\(name)" } + fallbacks
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        throw Missing(message: """
            \(name) is not on PATH\(fallbacks.isEmpty ? "" : " nor at \(fallbacks.joined(separator: ", "))"): the browser tests \
            need it. Run them with the test command, scripts/test, which installs it (with apt-get) when it is missing
            """)
    }

    struct Missing: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
