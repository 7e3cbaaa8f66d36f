import Hummingbird
import NIOCore

/// A request context that knows its connection's event loop.
///
/// The routes write a stream's response on that loop when the context offers it: each write then
/// goes to the socket at once, the connection's writability stops the writer before the next one
/// (a writer on another thread would queue writes faster than the loop can say the socket is
/// full), and a chunk's reader is woken on the thread that writes it, with no hop between
/// threads. Any other context works too, with a thread hop per write.
///
/// A context that also offers the connection's channel lets the stream responses write their
/// bodies from that loop with no task in between (``ChannelStreamWriter``), when the connection's
/// pipeline has a ``StreamWriterHandler`` (``HTTPServerBuilder/resumableStream(headerTimeout:idleTimeout:logger:)``
/// adds it). Those bodies go to the channel past any ``ResponseBodyWriter`` a middleware wraps
/// around Hummingbird's: offer the channel only where no middleware rewrites response bodies.
public protocol EventLoopRequestContext: RequestContext {
    var eventLoop: any EventLoop { get }
    var channel: (any Channel)? { get }
}

extension EventLoopRequestContext {
    public var channel: (any Channel)? { nil }
}

/// The context the server's router uses: Hummingbird's basic context and the connection's channel.
public struct StreamRequestContext: EventLoopRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let connection: any Channel

    public var eventLoop: any EventLoop { connection.eventLoop }
    public var channel: (any Channel)? { connection }

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = CoreRequestContextStorage(source: source)
        self.connection = source.channel
    }
}
