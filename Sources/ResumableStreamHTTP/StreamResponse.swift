import HTTPTypes
import Hummingbird
import NIOCore
import Redis
import ResumableStream

/// Writes one reader into a response body, at the pace of the client's socket: the next chunks
/// are read only once the previous write has gone out, so a client that stops reading costs its
/// reader's offset and the socket's buffers, nothing more.
struct StreamResponse: Sendable {
    let framer: StreamFramer
    let heartbeat: TimeAmount
    /// The most text one write carries when chunks pile up.
    let writeSize: Int
    /// The connection's event loop when the request context knows it, else any: the heartbeat's
    /// timer runs there.
    let eventLoop: any EventLoop
    /// Whether `eventLoop` is the connection's: the writer then runs on it (see
    /// ``EventLoopRequestContext``).
    let writesOnEventLoop: Bool
    /// The connection, when the request context offers it: the body is then written from its
    /// event loop by a ``ChannelStreamWriter``, if its pipeline has a ``StreamWriterHandler``.
    let channel: (any Channel)?
    let metrics: StreamMetrics

    func response(_ reader: ResumableStreamReader, slot: ReaderSlot) -> Response {
        var headers: HTTPFields = [
            .contentType: "text/event-stream; charset=utf-8",
            .cacheControl: "no-cache",
        ]
        // nginx buffers responses unless told not to.
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            // The slot is given back once the body is done with, however it ends.
            defer { withExtendedLifetime(slot) {} }
            var buffer = ByteBuffer()
            framer.writeStart(into: &buffer)
            try await send(&buffer, to: &writer)
            // Handed to the connection's event loop, which writes the body and the response's end
            // and gives the slot back: the request's task ends here, and the connection's waits
            // for its next request (see ``StreamWriterHandler``).
            if let channel, try await ChannelStreamWriter.start(
                on: channel, reader: reader, framer: framer, writeSize: writeSize, heartbeat: heartbeat,
                metrics: metrics, slot: slot
            ) != nil {
                return
            }
            let idleTimer = IdleTimer(interval: heartbeat, on: eventLoop)
            defer { idleTimer.cancel() }
            guard writesOnEventLoop else {
                return try await write(reader, idleTimer: idleTimer, into: &writer)
            }
            try await withTaskExecutorPreference(EventLoopTaskExecutor(eventLoop: eventLoop)) {
                try await write(reader, idleTimer: idleTimer, into: &writer)
            }
        })
    }

    /// The body written from the response's task, for a connection that offers no
    /// ``ChannelStreamWriter``: the next chunks are read only once the previous write has gone
    /// out, so a client that stops reading costs its reader's offset and the socket's buffers.
    private func write(
        _ reader: ResumableStreamReader,
        idleTimer: IdleTimer,
        into writer: inout any ResponseBodyWriter
    ) async throws {
        var iterator = reader.makeAsyncIterator()
        var buffer = ByteBuffer()
        while true {
            let read: ResumableStreamRead?
            do {
                read = try await iterator.next(maximumBytes: writeSize, idleTimer: idleTimer)
            } catch let error as ResumableStreamError {
                try await end(error, at: iterator.offset, buffer: &buffer, writer: &writer)
                return
            }
            switch read {
            case nil:
                try await end(nil, at: iterator.offset, buffer: &buffer, writer: &writer)
                return
            case .idle?:
                framer.writeHeartbeat(into: &buffer)
            case .chunks(let chunks)?:
                framer.write(chunks, into: &buffer)
            }
            try await send(&buffer, to: &writer)
        }
    }

    /// Waits until the connection takes the buffer (NIO's writability: the write does not return
    /// while the client's socket is full), then empties it.
    private func send(_ buffer: inout ByteBuffer, to writer: inout any ResponseBodyWriter) async throws {
        guard buffer.readableBytes > 0 else { return }
        metrics.sent(bytes: buffer.readableBytes)
        try await writer.write(buffer)
        // The connection holds this one until it is sent; the next write gets its own, rather
        // than a copy of this one's whole capacity.
        buffer = ByteBuffer()
    }

    private func end(
        _ error: ResumableStreamError?,
        at offset: Int,
        buffer: inout ByteBuffer,
        writer: inout any ResponseBodyWriter
    ) async throws {
        let breaking = framer.writeEnding(error, at: offset, into: &buffer)
        try await send(&buffer, to: &writer)
        if let breaking { throw breaking }
        try await writer.finish(nil)
    }
}

/// One of the limited places for concurrent readers; given back when the response is done with
/// it, however it ended (even when its body is never written).
final class ReaderSlot: Sendable {
    private let release: @Sendable () -> Void

    init(release: @escaping @Sendable () -> Void) {
        self.release = release
    }

    deinit {
        release()
    }
}
