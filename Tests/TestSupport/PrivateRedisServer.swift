import Foundation
import Redis
import Synchronization

/// A redis-server of one test's own: for measurements that must not see other tests' commands
/// (`INFO commandstats` counts for the whole server), and for faults (paused, killed, restarted
/// empty). Loopback, a free port, no persistence, no password.
public final class PrivateRedisServer: Sendable {
    public let url: String
    public let port: Int
    private let process: Mutex<ChildProcess>

    init(url: String, port: Int, process: ChildProcess) {
        self.url = url
        self.port = port
        self.process = Mutex(process)
    }

    public static func start() async throws -> PrivateRedisServer {
        for _ in 0..<20 {
            let port = Int.random(in: 20_000..<60_000)
            if let process = try await launch(port: port) {
                return PrivateRedisServer(url: "redis://127.0.0.1:\(port)", port: port, process: process)
            }
        }
        throw StartFailed()
    }

    /// Starts a redis-server on `port` and waits until it answers; `nil` if it exits first (the
    /// port was taken).
    private static func launch(port: Int) async throws -> ChildProcess? {
        try await launch(arguments: ["--port", "\(port)"]) { await answers(RedisConfiguration(port: port)) }
    }

    /// Whether a client with `configuration` connects.
    static func answers(_ configuration: RedisConfiguration) async -> Bool {
        guard let client = try? await RedisClient.connect(configuration: configuration) else { return false }
        await client.close()
        return true
    }

    /// Starts a redis-server with `arguments` (which say where it listens) and waits until it is
    /// `ready`; `nil` if it exits first (the port was taken).
    static func launch(arguments: [String], ready: () async -> Bool) async throws -> ChildProcess? {
        let process = try ChildProcess.spawn(
            name: "redis-server", executable: "/usr/bin/env",
            arguments: ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", ""] + arguments,
            logPath: "/dev/null"
        )
        // Ready once it answers; gone if the port was taken.
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning, ContinuousClock.now < deadline {
            if await ready() {
                return process
            }
            await Task.yield()
        }
        process.killAndReap()
        return nil
    }

    /// Pauses the server (SIGSTOP), as a stalled or overloaded Redis: connections stay open and
    /// nothing is answered.
    public func pause() {
        process.withLock { $0 }.signal(SIGSTOP)
    }

    /// Lets a paused server go on (SIGCONT).
    public func resume() {
        process.withLock { $0 }.signal(SIGCONT)
    }

    /// Kills the server and starts a new, empty one on the same port, as a Redis without
    /// persistence that restarts.
    public func restart() async throws {
        stop()
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let process = try await Self.launch(port: port) {
                self.process.withLock { $0 = process }
                return
            }
        }
        throw StartFailed()
    }

    public struct StartFailed: Error, CustomStringConvertible {
        public var description: String { "could not start a redis-server on a free port" }
    }

    public func configuration() throws -> RedisConfiguration {
        try RedisConfiguration(url: url)
    }

    /// Stops the server with SIGKILL (it has nothing to save) and reaps it.
    public func stop() {
        process.withLock { $0 }.killAndReap()
    }

    /// Calls per command since the last `CONFIG RESETSTAT`, from `INFO commandstats`.
    public static func commandCalls(_ client: RedisClient) async throws -> [String: Int] {
        let info = try await client.send("INFO", "commandstats").string ?? ""
        var calls: [String: Int] = [:]
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
            // cmdstat_publish:calls=3,usec=...
            let name = line.dropFirst("cmdstat_".count).prefix { $0 != ":" }
            guard let field = line.split(separator: ",").first, let equals = field.firstIndex(of: "=") else { continue }
            calls[String(name)] = Int(field[field.index(after: equals)...])
        }
        return calls
    }
}
