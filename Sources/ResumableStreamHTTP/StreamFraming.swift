import Foundation
import NIOCore
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

/// The bytes of a stream response, whichever writer sends them: what it starts with, its chunks,
/// its heartbeats and its ending.
struct StreamFramer: Sendable {
    let framing: StreamFraming
    let retryMilliseconds: Int

    /// What goes out before the first chunk, at once, so that the client sees the stream open.
    func writeStart(into buffer: inout ByteBuffer) {
        if framing == .sse {
            ServerSentEvents.writeRetry(milliseconds: retryMilliseconds, into: &buffer)
        }
    }

    func write(_ chunks: [ResumableStreamChunk], into buffer: inout ByteBuffer) {
        // Room for the text and each event's fields, so that the buffer grows once.
        buffer.reserveCapacity(minimumWritableBytes: chunks.reduce(0) { $0 + $1.slice.utf8.count + 32 })
        for chunk in chunks {
            var part = ChunkPart(chunk)
            write(&part, into: &buffer, limit: .max)
        }
    }

    /// How much of one chunk has been written, when it is written over several writes.
    struct ChunkPart: Sendable {
        let chunk: ResumableStreamChunk
        fileprivate var started = false
        fileprivate var lines = ServerSentEvents.DataLines()
        /// Raw: UTF-8 bytes written.
        fileprivate var written = 0
        fileprivate(set) var isComplete = false

        init(_ chunk: ResumableStreamChunk) {
            self.chunk = chunk
        }
    }

    /// The most a write's buffer holds beyond the limit given to ``write(_:into:limit:)``.
    static let overshoot = 48

    /// Writes the chunk on from where its last write stopped, until the buffer holds `limit`
    /// bytes or the chunk is written (``ChunkPart/isComplete``), so that a chunk larger than a
    /// write goes out in several, each no larger than the writer's bound. The buffer may hold up
    /// to ``overshoot`` bytes more.
    func write(_ part: inout ChunkPart, into buffer: inout ByteBuffer, limit: Int) {
        guard !part.isComplete, buffer.readableBytes < limit else { return }
        switch framing {
        case .sse:
            if !part.started {
                ServerSentEvents.writeID(offset: part.chunk.offset, into: &buffer)
                part.started = true
            }
            part.lines.write(part.chunk.slice, into: &buffer, limit: limit)
            part.isComplete = part.lines.isComplete
        case .raw:
            // Bytes, not characters: a write may end inside one, and the next goes on from there.
            let room = max(limit - buffer.readableBytes, 0)
            let written = part.written
            var text = part.chunk.slice
            let count = text.utf8.count
            let end = min(count, written + room)
            _ = text.withUTF8 { bytes in
                buffer.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[written..<end])))
            }
            part.written = end
            part.isComplete = end == count
        }
    }

    /// What keeps an idle stream's connection open through proxies: an SSE comment, which clients
    /// ignore. Raw text has no such thing.
    func writeHeartbeat(into buffer: inout ByteBuffer) {
        if framing == .sse {
            ServerSentEvents.writeComment("heartbeat", into: &buffer)
        }
    }

    /// The end of the response once its reader has ended at `offset`, completed (`error` is `nil`)
    /// or not; returns the error that must break the body off instead of ending it (raw text says
    /// nothing of how it ended, so only a body that never ends tells its client).
    func writeEnding(_ error: ResumableStreamError?, at offset: Int, into buffer: inout ByteBuffer) -> ResumableStreamError? {
        switch (framing, error) {
        case (.sse, nil):
            writeEnd("completed", at: offset, into: &buffer)
        case (.sse, .shuttingDown?):
            // No end event: the client reconnects (an EventSource does so by itself, with its
            // Last-Event-ID) and another instance carries on.
            ServerSentEvents.writeComment("this instance is shutting down; resume elsewhere", into: &buffer)
        case (.sse, .cancelled?):
            writeEnd("cancelled", at: offset, into: &buffer)
        case (.sse, let error?):
            writeEnd("failed", at: offset, error: error, into: &buffer)
        case (.raw, let error):
            return error
        }
        return nil
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
