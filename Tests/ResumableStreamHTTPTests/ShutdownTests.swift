import AsyncHTTPClient
import Foundation
import NIOCore
import ResumableStreamServer
import Testing
import TestSupport

/// Graceful shutdown as a load balancer sees it.
@Suite(.timeLimit(.minutes(2)))
struct ShutdownTests {
    @Test func anIdleServerSaysItIsGoingAndStillAnswersForTheShutdownDelay() async throws {
        // Long enough that the checks below run inside it on a loaded machine (the suites start
        // clusters and servers of their own at the same moment).
        let delay = Duration.seconds(10)
        try await withServers(1, redis: false, { $0.shutdownDelay = delay }) { servers in
            let server = servers[0]
            #expect(try await Client.json(.GET, "\(server.base)/readyz").status == 200)
            let start = ContinuousClock.now
            // What SIGTERM does; nothing is left to drain. The group hears of it as soon as it runs.
            await server.server.shutdown()
            try await eventually(timeout: .seconds(5)) {
                try await Client.json(.GET, "\(server.base)/readyz").status == 503
            }
            let (status, object) = try await Client.json(.GET, "\(server.base)/readyz")
            #expect(status == 503)
            #expect(object["error"] as? String == "shutting_down")
            // Still answered while the delay runs, on a new connection too (the listener is open);
            // new streams are refused.
            let fresh = try await RawConnection.connect(port: server.port)
            let answer = Task { await fresh.readUntilClosed() }
            try await fresh.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            #expect(await answer.value.hasPrefix("HTTP/1.1 200 OK\r\n"))
            let created = try await Client.json(.POST, "\(server.base)/streams/late", body: #"{"source":"demo"}"#)
            #expect(created.status == 503)
            #expect(created.object["error"] as? String == "shutting_down")

            // Then the listener closes, once the delay is over.
            await server.stopped()
            #expect(ContinuousClock.now - start >= delay)
            await #expect(throws: (any Error).self) {
                _ = try await RawConnection.connect(port: server.port)
            }
        }
    }
}
