import Foundation
import Testing

extension FaultTests {
    /// The executable's access flags reach the service: with a secret, writes and (with
    /// --require-read-token) reads need a token, and listed origins get their preflights
    /// answered; --require-read-token without a key stops the start with the reason; without a
    /// key the instance warns that writes are open.
    @Test func theAccessFlagsOfTheExecutable() async throws {
        try await FaultHarness.run { h in
            let app = "https://app.example.com"
            let guarded = try await h.startServer("guarded", redis: nil, extraArguments: [
                "--jwt-secret", "a-secret-for-the-fault-suite-of-32-bytes-or-more",
                "--require-read-token", "--cors-allowed-origins", app,
            ])
            h.check(guarded.process.log.contains("need a HS256 token; reading does too"), "the guarded instance did not say what needs a token:\n\(guarded.process.logTail(lines: 10))")
            let write = await HTTP.send(.POST, "\(guarded.base)/streams/a", body: Demo(count: 1, intervalMs: 0).body)
            h.check(write.status == 401 && write.errorCode == "missing_token", "a write without a token: \(write)")
            let read = await HTTP.send(.GET, "\(guarded.base)/streams/a")
            h.check(read.status == 401 && read.errorCode == "missing_token", "a read without a token: \(read)")
            let preflight = await HTTP.send(.OPTIONS, "\(guarded.base)/streams/a", headers: [("Origin", app), ("Access-Control-Request-Method", "POST")])
            h.check(preflight.status == 204 && preflight.headers.first(name: "Access-Control-Allow-Origin") == app, "a preflight from \(app): \(preflight)")
            guarded.process.killAndReap()

            do {
                let server = try await h.startServer("read tokens without a key", redis: nil, extraArguments: ["--require-read-token"])
                h.fail("an instance with --require-read-token and no key started and listens on \(server.port)")
            } catch let error as ServerProcess.StartFailed {
                h.check(error.message.contains("before it listened") && error.message.contains("--require-read-token needs a key"),
                        "--require-read-token without a key: expected it to exit before it listens, saying why; got \(error.message)")
            }

            let open = try await h.startServer("open", redis: nil)
            h.check(open.process.log.contains("warning") && open.process.log.contains("writes are open"), "the open instance did not warn:\n\(open.process.logTail(lines: 10))")
            open.process.killAndReap()
        }
    }

    /// `--help` prints each flag's default, and most defaults come from the environment: the
    /// secrets (Redis's password in its URL, the token secret) must not be among them.
    @Test func helpShowsNoSecretOfTheEnvironment() async throws {
        try await FaultHarness.run { h in
            let executable = try ServerExecutable.path()
            let help = try h.spawn("server --help", logName: "help", executable: executable, arguments: ["--help"], environment: [
                "REDIS_URL=redis://:a-redis-password@127.0.0.1:6399",
                "JWT_SECRET=a-token-secret-for-the-fault-suite-of-32-bytes",
            ])
            let ended = await help.termination(within: .seconds(30))
            h.check(ended != nil, "--help did not end within 30 s")
            h.check(help.log.contains("--redis-url") && help.log.contains("--jwt-secret"), "--help does not list the flags:\n\(help.logTail(lines: 10))")
            h.check(!help.log.contains("a-redis-password") && !help.log.contains("a-token-secret"), "--help printed a secret of the environment:\n\(help.log)")
        }
    }
}
