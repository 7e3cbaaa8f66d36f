import Testing

extension FaultTests {
    /// A connection that sends nothing, and one that sends its request head a byte every 300 ms,
    /// are closed by the server after its header and idle timeouts; a normal request on another
    /// connection is served meanwhile.
    @Test func slowClientsAreCutOffAfterTheHTTPTimeouts() async throws {
        try await FaultHarness.run { h in
            var options = ServerOptions()
            options.headerTimeoutSeconds = 1
            options.idleTimeoutSeconds = 2
            let headerTimeout = Duration.seconds(1), idleTimeout = Duration.seconds(2)
            let a = try await h.startServer("A", redis: nil, options: options)

            // Taken before the connections open: the server's timer starts when it accepts one.
            let connectedAt = ContinuousClock.now
            let silent = try await TCPConnection.connect(port: a.port)
            let trickling = try await TCPConnection.connect(port: a.port)
            let head = Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: a-slow-client\r\n\r\n".utf8)
            async let silentEnd = silent.timeUntilClosed(since: connectedAt, sending: [], every: .zero, timeout: .seconds(8))
            async let tricklingEnd = trickling.timeUntilClosed(since: connectedAt, sending: head, every: .milliseconds(300), timeout: .seconds(8))

            let normal = await HTTP.send(.GET, "\(a.base)/healthz", timeout: .seconds(2))
            h.check(normal.status == 200 && normal.elapsed <= .seconds(1), "/healthz on a third connection while two clients are slow: \(normal)")

            let margin = Duration.milliseconds(1500)
            let (silentAfter, silentGot) = try await silentEnd
            h.check(silentAfter.map { $0 >= headerTimeout - .milliseconds(100) && $0 <= idleTimeout + margin } == true,
                    "a connection that sends nothing: expected the server to close it between \(headerTimeout.seconds) s and \((idleTimeout + margin).seconds) s, \(silentAfter.map { "closed after \($0.seconds) s" } ?? "still open after 8 s") (it sent \(silentGot.debugDescription))")
            let (tricklingAfter, tricklingGot) = try await tricklingEnd
            h.check(tricklingAfter.map { $0 >= headerTimeout - .milliseconds(100) && $0 <= headerTimeout + margin } == true,
                    "a connection that sends its head a byte every 300 ms: expected the server to close it between \(headerTimeout.seconds) s and \((headerTimeout + margin).seconds) s, \(tricklingAfter.map { "closed after \($0.seconds) s" } ?? "still open after 8 s") (it sent \(tricklingGot.debugDescription))")
            h.check(!tricklingGot.contains("200 OK"), "the trickled request was answered as if whole: \(tricklingGot.debugDescription)")
        }
    }
}
