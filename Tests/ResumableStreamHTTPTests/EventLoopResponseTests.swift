import NIOCore
import ResumableStreamServer
import Testing
import TestSupport

/// A stream response written from the connection's event loop ends its request's task at once,
/// while the connection stays in its middle: over real sockets, what the connection does next
/// waits for the response's end (a request pipelined behind it, a `Connection: close`, a client
/// that closed its side), and the connection's timeouts see the end.
@Suite(.timeLimit(.minutes(1)))
struct EventLoopResponseTests {
    private static let stream = "GET /streams/s HTTP/1.1\r\nHost: 127.0.0.1\r\n"

    /// Serves a stream of the gate's chunks "one" and "two" to `request` on a raw connection, and
    /// calls `whileLive` once "one" has arrived (the stream is live, and its request's task has long
    /// handed it to the event loop); "two" and the end follow, after a round trip on another
    /// connection. Returns what the connection
    /// received until the server closed it.
    private func served(
        _ request: String,
        whileLive: (RawConnection) async throws -> Void = { _ in },
        _ configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> String {
        try await withServers(1, redis: false, sources: Gate.sources, configure) { servers in
            let server = servers[0]
            let gate = Gate.make()
            let creator = try await Client.create(server.base, "s", body: gate.body)
            let connection = try await RawConnection.connect(port: server.port)
            let text = try await connection.channel.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: request))
                var pieces = inbound.makeAsyncIterator()
                var text = ""
                gate.send("one")
                while !text.contains("data: one\n\n"), let piece = try await pieces.next() {
                    text += String(buffer: piece)
                }
                try await whileLive(connection)
                // Another request's whole round trip on another connection: what `whileLive` sent
                // has been read and acted on by then, unless the server holds it back.
                #expect(try await Client.json(.GET, "\(server.base)/healthz").status == 200)
                gate.send("two")
                gate.finish()
                while let piece = try await pieces.next() {
                    text += String(buffer: piece)
                }
                return text
            }
            #expect(try await Client.read(creator).text == "onetwo")
            // The reader's slot is given back by the writer, at the end.
            try await eventually { server.routes.activeReaders == 0 }
            return text
        }
    }

    /// `text` is one whole stream response of "one" and "two", its chunked body ended.
    private func expectWholeStream(_ text: Substring, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"), sourceLocation: sourceLocation)
        #expect(text.contains("data: one\n\n"), sourceLocation: sourceLocation)
        #expect(text.contains("data: two\n\n"), sourceLocation: sourceLocation)
        #expect(text.contains(#"event: end\#ndata: {"offset":6,"status":"completed"}"#), sourceLocation: sourceLocation)
        #expect(text.hasSuffix("\r\n0\r\n\r\n"), "the chunked body ends", sourceLocation: sourceLocation)
    }

    /// A request that comes while a response is being written waits for its end (HTTP/1.1
    /// pipelining): its answer does not land in the middle of the stream's body.
    @Test func aRequestSentDuringAStreamIsAnsweredAfterTheStreamEnds() async throws {
        let health = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        let text = try await served(Self.stream + "\r\n", whileLive: { try await $0.write(health) })
        guard let second = text.range(of: "HTTP/1.1 200 OK\r\n", range: text.index(after: text.startIndex)..<text.endIndex) else {
            Issue.record("one response, not two: \(text)")
            return
        }
        expectWholeStream(text[..<second.lowerBound])
        #expect(text[second.lowerBound...].contains("\r\n\r\n{"), "the health check's answer: \(text[second.lowerBound...])")
    }

    @Test func aStreamAskedForWithConnectionCloseIsWrittenWholeThenClosed() async throws {
        let text = try await served(Self.stream + "Connection: close\r\n\r\n")
        expectWholeStream(text[...])
    }

    @Test func aClientThatClosedItsSideGetsTheWholeStream() async throws {
        let text = try await served(Self.stream + "\r\n", whileLive: { connection in
            try await connection.channel.channel.close(mode: .output)
        })
        expectWholeStream(text[...])
    }

    /// The idle timeout counts from the stream's end, which it saw: the connection closes after it.
    @Test func aKeptAliveConnectionIsClosedAfterTheIdleTimeoutThatFollowsTheStream() async throws {
        let text = try await served(Self.stream + "\r\n", { $0.idleTimeout = .milliseconds(300) })
        expectWholeStream(text[...])
    }
}
