import Testing

#if canImport(Glibc)
import Glibc
#endif

extension FaultTests {
    /// SIGTERM on an instance with no streams: `/readyz` says 503 at once, so that a load
    /// balancer stops sending; the instance still answers everything else for the shutdown
    /// delay, then exits with status 0 and its port refuses connections.
    @Test func sigtermOnAnIdleInstance() async throws {
        try await FaultHarness.run { h in
            let redis = try await h.startRedis()
            var options = ServerOptions()
            options.shutdownDelaySeconds = 3
            let delay = Duration.seconds(3)
            let a = try await h.startServer("A", redis: redis, options: options)

            a.process.signal(SIGTERM)
            let signalledAt = ContinuousClock.now
            await h.waitFor("/readyz on A answers 503 with a JSON refusal after SIGTERM", since: signalledAt, within: .seconds(1)) {
                let answer = await HTTP.send(.GET, "\(a.base)/readyz", timeout: .seconds(1))
                return (answer.status == 503 && answer.errorCode != nil, answer.description)
            }

            // Everything else is answered as before until the delay ends: polled until the
            // instance stops answering.
            var lastServed: Duration?
            var refusal: String?
            while a.process.isRunning, ContinuousClock.now < signalledAt + delay + .seconds(10) {
                let health = await HTTP.send(.GET, "\(a.base)/healthz", timeout: .seconds(1))
                let status = await HTTP.send(.GET, "\(a.base)/streams/nothing/status", timeout: .seconds(1))
                if health.status == 200, status.status == 404, status.errorCode == "stream_not_found" {
                    lastServed = ContinuousClock.now - signalledAt
                } else {
                    refusal = refusal ?? "at \((ContinuousClock.now - signalledAt).seconds) s: /healthz \(health); status \(status)"
                    if ContinuousClock.now - signalledAt >= delay { break }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            let served = lastServed ?? .zero
            h.check(served >= delay - .milliseconds(500), "A stopped answering \(served.seconds) s after SIGTERM, before its \(delay.seconds) s shutdown delay ended: \(refusal ?? "")")

            let termination = await a.process.termination(within: signalledAt + delay + .seconds(8) - ContinuousClock.now)
            let exitedAfter = ContinuousClock.now - signalledAt
            h.check(termination == .exited(0), "A after SIGTERM: expected exit status 0, got \(termination?.description ?? "still running \(exitedAfter.seconds) s after SIGTERM")")
            h.check(exitedAfter >= delay - .milliseconds(200), "A exited \(exitedAfter.seconds) s after SIGTERM, before its \(delay.seconds) s shutdown delay ended")
            if termination != nil {
                h.check(TCPConnection.isRefused(port: a.port), "A's port \(a.port) still takes connections after A exited")
            }
        }
    }
}
