import Foundation
import Redis
import Testing

/// A redis-server of one test's own, for measurements that must not see other tests' commands
/// (`INFO commandstats` counts for the whole server). Same settings as the test command's: loopback,
/// a free port, no persistence.
final class PrivateRedisServer: Sendable {
    let url: String
    private let process: Process

    private init(url: String, process: Process) {
        self.url = url
        self.process = process
    }

    static func start() async throws -> PrivateRedisServer {
        for _ in 0..<20 {
            let port = Int.random(in: 20_000..<60_000)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "redis-server", "--bind", "127.0.0.1", "--port", "\(port)",
                "--save", "", "--appendonly", "no", "--logfile", "",
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let url = "redis://127.0.0.1:\(port)"
            // Ready once it answers; gone if the port was taken.
            let deadline = ContinuousClock.now + .seconds(10)
            while process.isRunning, ContinuousClock.now < deadline {
                if let client = try? await RedisClient.connect(configuration: RedisConfiguration(url: url)) {
                    await client.close()
                    return PrivateRedisServer(url: url, process: process)
                }
                await Task.yield()
            }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        throw StartFailed()
    }

    struct StartFailed: Error {}

    /// Stops the server with SIGKILL: it has nothing to save, and SIGTERM is not enough, because the
    /// child inherits the signal mask of the thread that started it, on which SIGTERM is blocked.
    /// Not `waitUntilExit()`: on Linux it spins a run loop and does not return on a concurrency thread.
    func stop() {
        kill(process.processIdentifier, SIGKILL)
    }

    /// Calls per command since the last `CONFIG RESETSTAT`, from `INFO commandstats`.
    static func commandCalls(_ client: RedisClient) async throws -> [String: Int] {
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
