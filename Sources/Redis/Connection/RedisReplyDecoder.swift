import NIOCore

/// Turns the bytes Redis sends into replies, with hiredis's reader doing the parsing.
///
/// A protocol error closes the connection: once the stream is out of step no later reply can be
/// trusted to belong to the command it would be matched with.
final class RedisReplyDecoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = RedisReply

    private let reader = HiredisReader()
    private var failed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let buffer = unwrapInboundIn(data)
        do {
            try buffer.withUnsafeReadableBytes { bytes throws(RedisProtocolError) in try reader.feed(bytes) }
            while let reply = try reader.next(allocator: context.channel.allocator) {
                context.fireChannelRead(wrapInboundOut(reply))
            }
        } catch {
            failed = true
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension RedisReplyDecoder: Sendable {}
