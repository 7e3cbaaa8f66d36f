import Hummingbird
import NIOCore

/// A request context that knows its connection's event loop.
///
/// The routes write a stream's response on that loop when the context offers it: each write then
/// goes to the socket at once, the connection's writability stops the writer before the next one
/// (a writer on another thread would queue writes faster than the loop can say the socket is
/// full), and a chunk's reader is woken on the thread that writes it, with no hop between
/// threads. Any other context works too, with a thread hop per write.
public protocol EventLoopRequestContext: RequestContext {
    var eventLoop: any EventLoop { get }
}

/// The context the server's router uses: Hummingbird's basic context and the connection's loop.
public struct StreamRequestContext: EventLoopRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let eventLoop: any EventLoop

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = CoreRequestContextStorage(source: source)
        self.eventLoop = source.channel.eventLoop
    }
}
