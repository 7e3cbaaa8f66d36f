import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Redis
import ResumableStream

/// How a stream's chunks go into a response.
public enum StreamFraming: String, Sendable, CaseIterable {
    /// Server-Sent Events: one event per chunk, whose `id:` is the offset after it; a final `end`
    /// event says how the stream ended.
    case sse
    /// The chunks as they are, for sources that speak SSE themselves and for clients that count
    /// offsets over the raw text (the reference's clients). A stream that did not complete breaks
    /// the response off (the chunked body never ends), so that a client cannot take it as whole.
    case raw
}

/// Writes one reader into a response body, at the pace of the client's socket: the next chunks
/// are read only once the previous write has gone out, so a client that stops reading costs its
/// reader's offset and the socket's buffers, nothing more.
struct StreamResponse: Sendable {
    let framing: StreamFraming
    let heartbeat: TimeAmount
    let retryMilliseconds: Int
    /// The most text one write carries when chunks pile up.
    let writeSize: Int
    /// The connection's event loop when the request context knows it, else any: the heartbeat's
    /// timer runs there.
    let eventLoop: any EventLoop
    /// Whether `eventLoop` is the connection's: the writer then runs on it (see
    /// ``EventLoopRequestContext``).
    let writesOnEventLoop: Bool
    let metrics: StreamMetrics

    func response(_ reader: ResumableStreamReader, slot: ReaderSlot) -> Response {
        var headers: HTTPFields = [
            .contentType: "text/event-stream; charset=utf-8",
            .cacheControl: "no-cache",
        ]
        // nginx buffers responses unless told not to.
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let idleTimer = IdleTimer(interval: heartbeat, on: eventLoop)
            defer { idleTimer.cancel() }
            guard writesOnEventLoop else {
                return try await write(reader, slot: slot, idleTimer: idleTimer, into: &writer)
            }
            try await withTaskExecutorPreference(EventLoopTaskExecutor(eventLoop: eventLoop)) {
                try await write(reader, slot: slot, idleTimer: idleTimer, into: &writer)
            }
        })
    }

    private func write(
        _ reader: ResumableStreamReader,
        slot: ReaderSlot,
        idleTimer: IdleTimer,
        into writer: inout any ResponseBodyWriter
    ) async throws {
        var iterator = reader.makeAsyncIterator()
        var buffer = ByteBuffer()
        if framing == .sse {
            // At once, so that the client sees the stream open before its first chunk.
            ServerSentEvents.writeRetry(milliseconds: retryMilliseconds, into: &buffer)
            try await send(&buffer, to: &writer)
        }
        while true {
            let read: ResumableStreamRead?
            do {
                read = try await iterator.next(maximumBytes: writeSize, idleTimer: idleTimer)
            } catch let error as ResumableStreamError {
                try await end(with: error, at: iterator.offset, buffer: &buffer, writer: &writer)
                return
            }
            switch read {
            case nil:
                if framing == .sse {
                    writeEnd("completed", at: iterator.offset, into: &buffer)
                }
                try await send(&buffer, to: &writer)
                try await writer.finish(nil)
                return
            case .idle?:
                // SSE comments are invisible to clients; raw text has no such thing.
                if framing == .sse {
                    ServerSentEvents.writeComment("heartbeat", into: &buffer)
                }
            case .chunks(let chunks)?:
                // Room for the text and each event's fields, so that the buffer grows once.
                buffer.reserveCapacity(minimumWritableBytes: chunks.reduce(0) { $0 + $1.slice.utf8.count + 32 })
                for chunk in chunks {
                    switch framing {
                    case .sse: ServerSentEvents.writeEvent(data: chunk.slice, offset: chunk.offset, into: &buffer)
                    case .raw: buffer.writeSubstring(chunk.slice)
                    }
                }
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
        with error: ResumableStreamError,
        at offset: Int,
        buffer: inout ByteBuffer,
        writer: inout any ResponseBodyWriter
    ) async throws {
        switch (framing, error) {
        case (.sse, .shuttingDown):
            // No end event: the client reconnects (an EventSource does so by itself, with its
            // Last-Event-ID) and another instance carries on.
            ServerSentEvents.writeComment("this instance is shutting down; resume elsewhere", into: &buffer)
        case (.sse, .cancelled):
            writeEnd("cancelled", at: offset, into: &buffer)
        case (.sse, _):
            writeEnd("failed", at: offset, error: error, into: &buffer)
        case (.raw, _):
            try await send(&buffer, to: &writer)
            throw error
        }
        try await send(&buffer, to: &writer)
        try await writer.finish(nil)
    }

    /// The final event: `event: end` with a JSON object that says how the stream ended and at
    /// which offset. It carries no `id`, so a client's last event id stays the last chunk's.
    private func writeEnd(_ status: String, at offset: Int, error: ResumableStreamError? = nil, into buffer: inout ByteBuffer) {
        struct End: Encodable {
            let status: String
            let offset: Int
            let error: String?
            let message: String?
        }
        let end = End(status: status, offset: offset, error: error?.code, message: error?.description)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(end)) ?? Data("{}".utf8)
        ServerSentEvents.writeEvent(data: String(decoding: data, as: UTF8.self), name: "end", into: &buffer)
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
