/// One chunk of a stream, with the offset just after it: what a client that received this chunk
/// passes as `resumeAt` to continue without a gap or a duplicate.
public struct ResumableStreamChunk: Sendable, Hashable {
    public let text: String
    public let offset: Int
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

    public struct AsyncIterator: AsyncIteratorProtocol {
        let buffer: StreamBuffer
        let lease: ReaderLease?
        var offset: Int

        public mutating func next() async throws -> ResumableStreamChunk? {
            switch try await buffer.read(at: offset, maximumChunks: 1) {
            case .text(let pieces, let end):
                offset = end
                return ResumableStreamChunk(text: String(pieces[0]), offset: end)
            case .end(.completed):
                return nil
            case .end(.failed(let error)):
                throw error
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(buffer: buffer, lease: lease, offset: startOffset)
    }
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
