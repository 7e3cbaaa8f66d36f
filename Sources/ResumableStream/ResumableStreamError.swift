/// Why a stream, or a call on the coordinator, did not end normally.
///
/// A reader's sequence ends with `nil` when the stream completed, and throws one of these otherwise:
/// ``cancelled`` when someone cancelled the stream, any other case when it failed.
public enum ResumableStreamError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stream was cancelled (``ResumableStreamContext/cancel(_:)``), here or on another instance.
    case cancelled
    /// The producer's source threw; the text is its error's description.
    case sourceFailed(String)
    /// The stream's buffer reached the per-stream limit; the stream was ended there.
    case streamBufferLimitExceeded(limit: Int)
    /// All streams together reached the per-process buffer limit; this stream was ended there.
    case processBufferLimitExceeded(limit: Int)
    /// The producer did not answer a resume request within the acknowledgement timeout.
    case acknowledgementTimeout(streamId: String)
    /// A negative offset.
    case invalidOffset(Int)
    /// The stream is finished and shorter than the requested offset.
    case offsetBeyondEnd(offset: Int, length: Int)
    /// This instance lost its connection to the stream, and the stream finished before it could
    /// ask again for what it missed. A longer replay grace lets it recover.
    case missedEnd(streamId: String)
    /// The stream stopped without an end: its producer went away (its process died, or its Redis
    /// connection was cut) or its sentinel vanished.
    case producerLost(streamId: String)
    /// The stream id cannot be used as part of a Redis key.
    case invalidStreamId(String)
    /// Redis (or the broker) failed; the text describes how.
    case broker(String)
    /// This process is shutting down: it starts no stream and follows none, and the readers it
    /// still had end with this (another instance can resume them).
    case shuttingDown
    /// Continuing a stream from its store needs durable streams (``ResumableStreamDurability/redis``).
    case notDurable

    public var description: String {
        switch self {
        case .cancelled: return "the stream was cancelled"
        case .sourceFailed(let reason): return "the stream's source failed: \(reason)"
        case .streamBufferLimitExceeded(let limit): return "the stream exceeded its buffer limit of \(limit) bytes"
        case .processBufferLimitExceeded(let limit): return "the streams of this process exceeded their buffer limit of \(limit) bytes"
        case .acknowledgementTimeout(let id): return "the producer of stream '\(id)' did not acknowledge the resume request in time"
        case .invalidOffset(let offset): return "offset \(offset) is negative"
        case .offsetBeyondEnd(let offset, let length): return "offset \(offset) is past the end of the finished stream (\(length))"
        case .missedEnd(let id): return "the stream '\(id)' finished while this instance was cut off from it; what it missed is no longer replayed"
        case .producerLost(let id): return "the producer of stream '\(id)' went away before the stream ended"
        case .invalidStreamId(let reason): return "invalid stream id: \(reason)"
        case .broker(let reason): return "the broker failed: \(reason)"
        case .shuttingDown: return "this instance is shutting down"
        case .notDurable: return "continuing a stream needs durable streams (--durability redis)"
        }
    }
}
