import NIOCore
import NIOHTTPTypes

/// The place in a connection's pipeline where a stream response written from the connection's
/// event loop (``ChannelStreamWriter``) writes its body, and from which it hears that the
/// connection can take more or has closed.
///
/// It sits right after the HTTP codec, before the handlers that look at a response's head and end
/// (the connection's timeouts, Hummingbird's connection state), which do nothing with body parts:
/// the head and the end still go through Hummingbird's writer and every handler, in order,
/// because the body is written only between the two.
final class StreamWriterHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundOut = HTTPResponsePart

    private var context: ChannelHandlerContext?
    /// The context's channel, kept: asked for its writability before every write.
    private var channel: (any Channel)?
    /// The response being written, if it writes from here.
    private var writer: ChannelStreamWriter?

    init() {}

    var isWritable: Bool { channel?.isWritable ?? false }

    /// Makes `writer` the one told about the connection; `false` if the connection has closed.
    func attach(_ writer: ChannelStreamWriter) -> Bool {
        guard let channel, channel.isActive else { return false }
        self.writer = writer
        return true
    }

    func detach(_ writer: ChannelStreamWriter) {
        if self.writer === writer { self.writer = nil }
    }

    func write(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(.body(buffer)), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.channel = context.channel
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        writer?.stop(ChannelError.ioOnClosedChannel)
        self.context = nil
        self.channel = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writer?.pump()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        writer?.stop(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}
