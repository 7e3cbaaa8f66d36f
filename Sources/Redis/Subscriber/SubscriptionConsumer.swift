import NIOCore

/// One consumer of a channel, as the subscriber sees it: where its events go, and the subscribe
/// call waiting for Redis's confirmation. Used on the subscriber's event loop only.
final class SubscriptionConsumer {
    typealias Continuation = AsyncThrowingStream<RedisSubscriptionEvent, any Error>.Continuation

    let id: Int
    private let continuation: Continuation
    private let confirmation: EventLoopPromise<Void>
    var timeout: Scheduled<Void>?
    /// Messages were dropped because the buffer was full; the consumer is told before the next one.
    private var owesOverflowGap = false

    init(id: Int, continuation: Continuation, confirmation: EventLoopPromise<Void>) {
        self.id = id
        self.continuation = continuation
        self.confirmation = confirmation
    }

    func confirm() {
        timeout?.cancel()
        timeout = nil
        confirmation.succeed()
    }

    func deliver(_ event: RedisSubscriptionEvent) {
        var gapQueued = false
        if owesOverflowGap {
            guard case .enqueued = continuation.yield(.gap(.consumerOverflow)) else { return }
            owesOverflowGap = false
            gapQueued = true
        }
        // A message dropped right after a gap is covered by that gap.
        if case .dropped = continuation.yield(event), !gapQueued {
            owesOverflowGap = true
        }
    }

    /// Ends the consumer: a waiting subscribe call throws, a reading one sees the sequence throw.
    func fail(_ error: any Error) {
        timeout?.cancel()
        timeout = nil
        confirmation.fail(error)
        continuation.finish(throwing: error)
    }
}

@available(*, unavailable)
extension SubscriptionConsumer: Sendable {}
