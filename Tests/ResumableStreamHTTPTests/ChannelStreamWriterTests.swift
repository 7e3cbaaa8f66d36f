import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import ResumableStream
@testable import ResumableStreamHTTP
import Testing
import TestSupport

/// The writer that writes a stream response from its connection's event loop, on a test channel:
/// what it writes, that it writes nothing while the connection is full, and that a closed
/// connection ends it.
@Suite(.timeLimit(.minutes(1)))
struct ChannelStreamWriterTests {
    /// A live stream fed by the test, on the embedded broker, and a connection with the handler.
    private func withStream(
        _ body: (ResumableStreamContext, ResumableStreamReader, AsyncStream<String>.Continuation, NIOAsyncTestingChannel) async throws -> Void
    ) async throws {
        let context = ResumableStreamContext(broker: EmbeddedStreamBroker())
        try await withThrowingTaskGroup { group in
            group.addTask { await context.run() }
            let (source, continuation) = AsyncStream.makeStream(of: String.self)
            let reader = try await context.createNewResumableStream("s") { source }
            let channel = NIOAsyncTestingChannel()
            try await channel.testingEventLoop.executeInContext {
                try channel.pipeline.syncOperations.addHandler(StreamWriterHandler())
            }
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
            try await body(context, reader, continuation, channel)
            continuation.finish()
            _ = try? await channel.finish()
            await context.shutdown(drainTimeout: .seconds(1))
            group.cancelAll()
        }
    }

    private func start(
        _ reader: ResumableStreamReader, on channel: NIOAsyncTestingChannel, metrics: StreamMetrics = StreamMetrics()
    ) async throws -> ChannelStreamWriter {
        let writer = try await ChannelStreamWriter.start(
            on: channel, reader: reader, framer: StreamFramer(framing: .sse, retryMilliseconds: 1000),
            writeSize: 4096, heartbeat: .seconds(60), metrics: metrics, slot: metrics.takeReaderSlot(limit: 1)
        )
        return try #require(writer, "the channel has the handler")
    }

    /// The next part the writer wrote, `nil` (with an issue) when there is none within 10 s.
    private func nextPart(_ channel: NIOAsyncTestingChannel, sourceLocation: SourceLocation = #_sourceLocation) async throws -> HTTPResponsePart? {
        var part: HTTPResponsePart?
        try await eventually(sourceLocation: sourceLocation) {
            part = try await channel.readOutbound(as: HTTPResponsePart.self)
            return part != nil
        }
        return part
    }

    /// The next body chunk the writer wrote, its chunked framing checked and taken off; "" (with
    /// an issue) when there is none within 10 s.
    private func nextBody(_ channel: NIOAsyncTestingChannel, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        var written: ByteBuffer?
        try await eventually(sourceLocation: sourceLocation) {
            written = try await channel.readOutbound(as: ByteBuffer.self)
            return written != nil
        }
        guard let written else { return "" }
        #expect(written.readableBytes <= 4096, "a write within the write size, framing included", sourceLocation: sourceLocation)
        let framed = String(buffer: written)
        guard let sizeEnd = framed.range(of: "\r\n"), let size = Int(framed[..<sizeEnd.lowerBound], radix: 16) else {
            Issue.record("not a chunk: \(framed.debugDescription)", sourceLocation: sourceLocation)
            return ""
        }
        let body = String(decoding: Array(framed[sizeEnd.upperBound...].utf8).dropLast(2), as: UTF8.self)
        #expect(body.utf8.count == size, "the chunk's size line", sourceLocation: sourceLocation)
        #expect(framed.hasSuffix("\r\n"), sourceLocation: sourceLocation)
        #expect(framed[..<sizeEnd.lowerBound] == String(size, radix: 16), "lowercase hex, no padding", sourceLocation: sourceLocation)
        return body
    }

    /// The writer ends the response itself, and gives the reader's slot back then: the task that
    /// started it does not wait.
    @Test func writesEachChunkAsItsEventThenTheEndAndGivesTheSlotBack() async throws {
        try await withStream { _, reader, source, channel in
            let metrics = StreamMetrics()
            let writer = try await start(reader, on: channel, metrics: metrics)
            source.yield("ab")
            #expect(try await nextBody(channel) == "id: 2\ndata: ab\n\n")
            source.yield("c\nd")
            #expect(try await nextBody(channel) == "id: 5\ndata: c\ndata: d\n\n")
            #expect(metrics.activeReaders == 1)
            source.finish()
            #expect(try await nextBody(channel) == "event: end\ndata: {\"offset\":5,\"status\":\"completed\"}\n\n")
            #expect(try await nextPart(channel) == .end(nil))
            try await writer.finished()
            #expect(metrics.activeReaders == 0)
        }
    }

    @Test func writesNothingWhileTheConnectionIsFull() async throws {
        try await withStream { context, reader, source, channel in
            channel.isWritable = false
            let writer = try await start(reader, on: channel)
            source.yield("ab")
            source.yield("cd")
            // Another reader has both chunks: the stream has them, and the writer has not written them.
            guard case .stream(let other) = try await context.resumeExistingStream("s") else {
                Issue.record("the stream is not there")
                return
            }
            var iterator = other.makeAsyncIterator()
            _ = try await iterator.next()
            _ = try await iterator.next()
            try await channel.testingEventLoop.executeInContext {}
            #expect(try await channel.readOutbound(as: HTTPResponsePart.self) == nil)
            // Room again: both chunks in one go.
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
            #expect(try await nextBody(channel) == "id: 2\ndata: ab\n\nid: 4\ndata: cd\n\n")
            source.finish()
            _ = try await nextBody(channel)
            try await writer.finished()
        }
    }

    @Test func aClosedConnectionEndsTheWriter() async throws {
        try await withStream { _, reader, source, channel in
            let metrics = StreamMetrics()
            let writer = try await start(reader, on: channel, metrics: metrics)
            source.yield("ab")
            _ = try await nextBody(channel)
            try await channel.close()
            await #expect(throws: ChannelError.ioOnClosedChannel) { try await writer.finished() }
            #expect(metrics.activeReaders == 0)
        }
    }
}

extension ChannelStreamWriterTests {
    @Test func aChunkLargerThanAWriteGoesOutInWritesOfThatSize() async throws {
        try await withStream { _, reader, source, channel in
            let writer = try await start(reader, on: channel)
            let text = String(repeating: "0123456789abcdef", count: 1024)  // 16 KiB
            source.yield(text)
            var received = ""
            var sizes: [Int] = []
            while !received.hasSuffix("\n\n") {
                let body = try await nextBody(channel)
                guard !body.isEmpty else { break }
                sizes.append(body.utf8.count)
                received += body
            }
            #expect(received == "id: 16384\ndata: \(text)\n\n")
            #expect(sizes.count == 5)
            #expect(sizes.allSatisfy { $0 <= 4096 })
            source.finish()
            _ = try await nextBody(channel)
            try await writer.finished()
        }
    }
}
