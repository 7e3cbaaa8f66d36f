import NIOCore

/// The last handler of a subscribed connection: parses each reply as a pub/sub push and hands it
/// to the subscriber, on the event loop.
final class RedisSubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = RedisReply

    private let onPush: (PubSubPush) -> Void

    init(onPush: @escaping (PubSubPush) -> Void) {
        self.onPush = onPush
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            onPush(try PubSubPush(unwrapInboundIn(data)))
        } catch {
            context.fireErrorCaught(error)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Out of step with Redis: only a new connection (and a restore of every channel) recovers.
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension RedisSubscriberHandler: Sendable {}
