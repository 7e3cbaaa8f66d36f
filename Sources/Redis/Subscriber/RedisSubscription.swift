import NIOCore

/// What a subscription delivers.
public enum RedisSubscriptionEvent: Sendable, Hashable {
    /// A message published on the channel, as bytes.
    case message(ByteBuffer)
    /// Messages may have been lost at this point. Pub/sub is at-most-once: a caller that needs every
    /// message must recover what it missed some other way (the coordinator asks its producer again).
    case gap(RedisSubscriptionGap)
}

public enum RedisSubscriptionGap: Sendable, Hashable {
    /// The connection was lost and has been restored; what was published meanwhile is lost.
    case reconnected
    /// This consumer fell further behind than its buffer holds; messages that did not fit were dropped.
    case consumerOverflow
    /// The shard channel's slot moved to another cluster node, where it is subscribed now; what
    /// was published in between is lost.
    case slotMoved
}

/// The messages of one channel, in the order Redis delivered them, for one consumer.
///
/// Each consumer has its own bounded buffer, so a slow consumer never holds up the connection or
/// the other consumers: when its buffer is full, new messages are dropped for it alone and it is
/// told so with ``RedisSubscriptionEvent/gap(_:)``. The sequence ends when ``unsubscribe()`` is
/// called or the iterating task is cancelled (both release the Redis subscription once no other
/// consumer needs it), and ends with an error when the subscriber closes or Redis refuses the channel.
public struct RedisSubscription: AsyncSequence, Sendable {
    public typealias Element = RedisSubscriptionEvent

    public let channel: String
    private let stream: AsyncThrowingStream<RedisSubscriptionEvent, any Error>
    private let continuation: AsyncThrowingStream<RedisSubscriptionEvent, any Error>.Continuation

    init(
        channel: String,
        stream: AsyncThrowingStream<RedisSubscriptionEvent, any Error>,
        continuation: AsyncThrowingStream<RedisSubscriptionEvent, any Error>.Continuation
    ) {
        self.channel = channel
        self.stream = stream
        self.continuation = continuation
    }

    /// Ends this consumer's sequence (after what it has buffered) and releases its share of the
    /// Redis subscription.
    public func unsubscribe() {
        continuation.finish()
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<RedisSubscriptionEvent, any Error>.AsyncIterator

        public mutating func next() async throws -> RedisSubscriptionEvent? {
            // In the caller's isolation (this module's async functions run on their caller's
            // executor), so the iterator never crosses to another one.
            try await base.next(isolation: #isolation)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator())
    }
}
