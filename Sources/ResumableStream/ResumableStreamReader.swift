import NIOCore

/// One chunk of a stream, with the offset just after it: what a client that received this chunk
/// passes as `resumeAt` to continue without a gap or a duplicate.
public struct ResumableStreamChunk: Sendable, Hashable {
    /// The chunk's text as the stream's buffer holds it, without a copy: a writer that sends the
    /// same chunk to a thousand readers copies it into their writes only.
    public let slice: Substring
    public let offset: Int

    public var text: String { String(slice) }

    public init(text: String, offset: Int) {
        self.init(text[...], offset: offset)
    }

    init(_ slice: Substring, offset: Int) {
        self.slice = slice
        self.offset = offset
    }
}

/// A stream, from an offset, as its reader sees it: chunks as the producer made them (the first
/// may be the end of one, when the offset falls inside it), in order.
///
/// The sequence ends with `nil` when the stream completed; it throws
/// ``ResumableStreamError/cancelled`` when the stream was cancelled, and another
/// ``ResumableStreamError`` when it failed. Reading is pulling: a reader that does not ask for the
/// next chunk costs an offset, nothing more.
public struct ResumableStreamReader: AsyncSequence, Sendable {
    public typealias Element = ResumableStreamChunk

    /// The offset the reader starts at.
    public let startOffset: Int
    let buffer: StreamBuffer
    let lease: ReaderLease?

    init(buffer: StreamBuffer, startOffset: Int, lease: ReaderLease?) {
        self.buffer = buffer
        self.startOffset = startOffset
        self.lease = lease
    }

    /// Throws ``ResumableStreamError/offsetBeyondEnd(offset:length:)`` when what this process
    /// already knows shows that the start is past the end of the finished stream; otherwise the
    /// reader finds out as it reads.
    public func checkStart() throws(ResumableStreamError) {
        if case .end(.failed(let error))? = buffer.readNow(at: startOffset), case .offsetBeyondEnd = error {
            throw error
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let buffer: StreamBuffer
        let lease: ReaderLease?
        /// The offset just after what this reader has taken.
        public private(set) var offset: Int

        public mutating func next() async throws -> ResumableStreamChunk? {
            try take(try await buffer.read(at: offset, maximumChunks: 1))
        }

        /// The chunks that are there, at least one (waiting for it), up to `maximumBytes` of text
        /// unless the first is larger; `.idle` when the reader has waited for the idle timer's
        /// interval since it last read. `nil` when the stream completed; throws as ``next()`` does.
        ///
        /// For writers that send what has piled up in one write, and keep an idle connection alive.
        public mutating func next(maximumBytes: Int, idleTimer: IdleTimer) async throws -> ResumableStreamRead? {
            guard let read = try await buffer.read(at: offset, maximumChunks: 1, idleTimer: idleTimer) else {
                return .idle
            }
            guard let first = try take(read) else { return nil }
            // The chunks that are there already, each with its own offset, under one lock; none
            // of this waits. An end is left for the next call, after these chunks are handled.
            let size = first.slice.utf8.count
            guard size < maximumBytes else { return .chunks([first]) }
            let more = buffer.chunksNow(from: offset, maximumBytes: maximumBytes - size)
            if let last = more.last {
                offset = last.offset
            }
            return .chunks([first] + more)
        }

        private mutating func take(_ read: StreamBuffer.Read?) throws -> ResumableStreamChunk? {
            switch read {
            case .text(let pieces, let end)?:
                offset = end
                return ResumableStreamChunk(pieces[0], offset: end)
            case .end(.completed)?, nil:
                return nil
            case .end(.failed(let error))?:
                throw error
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(buffer: buffer, lease: lease, offset: startOffset)
    }

    /// Reading without a task: what there is at `offset` now, up to `maximumBytes` of text unless
    /// the first chunk is larger; or `nil`, and `observer` is told on its event loop when there is
    /// more or the stream has ended. A connection's writer on its own loop reads this way, so
    /// that a chunk costs a thousand such readers one job per loop, not a resumed task each.
    public func poll(at offset: Int, maximumBytes: Int, notifying observer: any ResumableStreamObserver) -> ResumableStreamPoll? {
        buffer.poll(at: offset, maximumBytes: maximumBytes, notifying: observer)
    }

    /// Forgets `observer`, which is no longer told anything: a reader that stops before the end.
    public func stopNotifying(_ observer: any ResumableStreamObserver) {
        buffer.stopNotifying(observer)
    }
}

/// What ``ResumableStreamReader/AsyncIterator/next(maximumBytes:idleTimer:)`` gives.
public enum ResumableStreamRead: Sendable, Hashable {
    /// One or more chunks, in order.
    case chunks([ResumableStreamChunk])
    /// Nothing came within the idle timeout; the stream is still live.
    case idle
}

/// Held by the readers of a mirror; when the last one is gone, the mirror stops following.
final class ReaderLease: Sendable {
    private let onRelease: @Sendable () -> Void

    init(onRelease: @escaping @Sendable () -> Void) {
        self.onRelease = onRelease
    }

    deinit {
        onRelease()
    }
}
