import Foundation
import Redis

/// A redis-server of one test's own, which the test can pause (SIGSTOP) and resume (SIGCONT): a
/// Redis that stops answering while its connections stay open, as a stuck server or a half-open
/// connection looks to a client. Loopback, a free port, no persistence, no password.
final class PausableRedisServer: Sendable {
    let url: String
    private let pid: pid_t

    private init(url: String, pid: pid_t) {
        self.url = url
        self.pid = pid
    }

    /// Starts a server and returns once it answers; stop it with ``stop()``.
    static func start() async throws -> PausableRedisServer {
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
            let server = PausableRedisServer(url: "redis://127.0.0.1:\(port)", pid: process.processIdentifier)
            // Ready once it answers; it exits at once if the port was taken.
            let deadline = ContinuousClock.now + .seconds(10)
            while process.isRunning, ContinuousClock.now < deadline {
                if let client = try? await RedisClient.connect(configuration: RedisConfiguration(url: server.url)) {
                    await client.close()
                    return server
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            server.stop()
        }
        throw StartFailed()
    }

    struct StartFailed: Error, CustomStringConvertible {
        var description: String { "could not start a redis-server on a free port" }
    }

    func configuration() throws -> RedisConfiguration {
        try RedisConfiguration(url: url)
    }

    /// The server stops answering; its connections stay open.
    func pause() {
        kill(pid, SIGSTOP)
    }

    func resume() {
        kill(pid, SIGCONT)
    }

    /// SIGKILL, which also ends a paused server; SIGTERM would not do, because the child inherits
    /// the signal mask of the thread that started it, on which SIGTERM can be blocked.
    func stop() {
        kill(pid, SIGKILL)
    }
}
