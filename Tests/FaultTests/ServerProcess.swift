import Foundation
import TestSupport

/// The flags an instance of the server gets. Short timings, so that faults play out in seconds.
struct ServerOptions {
    /// The bound on every Redis call.
    var brokerTimeoutMs = 1000
    /// The live sentinel's lease.
    var leaseSeconds = 3
    var ackTimeoutMs = 1000
    var heartbeatSeconds = 1
    var replayGraceSeconds = 5
    var drainSeconds = 1
    var shutdownDelaySeconds: Int?
    var headerTimeoutSeconds: Int?
    var idleTimeoutSeconds: Int?
    /// `memory` or `redis` (every stream also kept in Redis); the server's default when `nil`.
    var durability: String?
    /// How long a durable stream stays readable after its end.
    var retentionSeconds: Int?
    /// How long a durable ingest whose producer went away waits to be continued.
    var ingestReattachSeconds: Int?

    var flags: [(name: String, value: String)] {
        var flags: [(String, String)] = [
            ("broker-timeout-ms", "\(brokerTimeoutMs)"),
            ("lease-seconds", "\(leaseSeconds)"),
            ("ack-timeout-ms", "\(ackTimeoutMs)"),
            ("heartbeat-seconds", "\(heartbeatSeconds)"),
            ("replay-grace-seconds", "\(replayGraceSeconds)"),
            ("drain-seconds", "\(drainSeconds)"),
        ]
        if let shutdownDelaySeconds { flags.append(("shutdown-delay-seconds", "\(shutdownDelaySeconds)")) }
        if let headerTimeoutSeconds { flags.append(("header-timeout-seconds", "\(headerTimeoutSeconds)")) }
        if let idleTimeoutSeconds { flags.append(("idle-timeout-seconds", "\(idleTimeoutSeconds)")) }
        if let durability { flags.append(("durability", durability)) }
        if let retentionSeconds { flags.append(("retention-seconds", "\(retentionSeconds)")) }
        if let ingestReattachSeconds { flags.append(("ingest-reattach-seconds", "\(ingestReattachSeconds)")) }
        return flags
    }
}

/// One instance of `resumable-stream-server`, the package's executable, on a port of 127.0.0.1
/// that the kernel chose (it says which in its "listening on" line).
struct ServerProcess: Sendable {
    let name: String
    let process: ChildProcess
    let port: Int

    var base: String { "http://127.0.0.1:\(port)" }

    /// Starts it and returns once `/healthz` answers.
    static func start(
        name: String,
        executable: String,
        arguments: [String],
        logPath: String,
        onStart: (ChildProcess) -> Void
    ) async throws -> ServerProcess {
        let process = try ChildProcess.spawn(name: name, executable: executable, arguments: arguments, logPath: logPath)
        onStart(process)
        // The port is in the log only: polled, with a deadline that a debug build's start on a
        // loaded machine stays well within.
        let deadline = ContinuousClock.now + .seconds(30)
        var port: Int?
        while port == nil {
            if let termination = process.poll() {
                throw StartFailed(message: "\(name) \(termination) before it listened:\n\(process.logTail(lines: 20))")
            }
            guard ContinuousClock.now < deadline else {
                throw StartFailed(message: "\(name) did not say it listens within 30 s:\n\(process.logTail(lines: 20))")
            }
            port = listeningPort(in: process.log)
            if port == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let server = ServerProcess(name: name, process: process, port: port ?? 0)
        while true {
            let health = await HTTP.send(.GET, "\(server.base)/healthz", timeout: .seconds(2))
            if health.status == 200 { return server }
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw StartFailed(message: "\(name) listens on \(server.port) but /healthz answered \(health):\n\(process.logTail(lines: 20))")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The port of "listening on http://HOST:PORT".
    static func listeningPort(in log: String) -> Int? {
        guard let range = log.range(of: "listening on http://") else { return nil }
        let address = log[range.upperBound...].prefix { !$0.isWhitespace }
        guard let colon = address.lastIndex(of: ":") else { return nil }
        return Int(address[address.index(after: colon)...])
    }

    struct StartFailed: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}

/// Where the server executable is, and which flags it knows.
enum ServerExecutable {
    static let variable = "RESUMABLE_STREAM_SERVER"

    /// `$RESUMABLE_STREAM_SERVER` (the test command builds the executable and sets it), else this
    /// package's debug build; an error that says what to do when neither is there.
    static func path() throws -> String {
        if let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw Missing(message: "\(variable)=\(path) is not an executable file")
            }
            return path
        }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let built = package.appendingPathComponent(".build/debug/resumable-stream-server").path
        guard FileManager.default.isExecutableFile(atPath: built) else {
            throw Missing(message: """
                the fault tests run the server executable, and it was not found: run them with scripts/test \
                (it builds resumable-stream-server and sets \(variable)), or build it with \
                `scripts/swift-with-hiredis build --product resumable-stream-server` and set \(variable) to it
                """)
        }
        return built
    }

    /// The flags its `--help` lists.
    static func knownFlags(executable: String, logPath: String) async throws -> Set<String> {
        let help = try ChildProcess.spawn(name: "server --help", executable: executable, arguments: ["--help"], logPath: logPath)
        guard await help.termination(within: .seconds(30)) != nil else {
            help.killAndReap()
            throw Missing(message: "\(executable) --help did not end within 30 s")
        }
        let words = help.log.split(whereSeparator: { $0.isWhitespace || $0 == "," || $0 == "=" })
        return Set(words.filter { $0.hasPrefix("--") }.map { String($0.dropFirst(2)) })
    }

    struct Missing: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
