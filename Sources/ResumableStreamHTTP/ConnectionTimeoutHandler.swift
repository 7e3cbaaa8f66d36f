import Logging
import NIOCore
import NIOHTTPTypes

/// Closes an HTTP/1.1 connection that takes longer than the header timeout to send a request
/// head, or stays idle between requests longer than the idle timeout; never one that owes a
/// response (see ``ConnectionTimeouts``).
///
/// Hummingbird's own `idleTimeout` is not used for this: it sees no byte of a head before the head
/// is whole, so it cannot tell a client that trickles its head from one that sends nothing, and it
/// counts the pauses of a request body as idle time, which cuts a slow upload.
///
/// Sits after the HTTP codec (Hummingbird's `additionalChannelHandlers`); the codec passes on the
/// end of every socket read, which tells bytes of an unfinished head apart from silence.
final class ConnectionTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let headerTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private let logger: Logger
    private var timeouts = ConnectionTimeouts()
    private var scheduled: Scheduled<Void>?
    /// Tells a timer that fires from the one that replaced it.
    private var generation = 0

    init(headerTimeout: TimeAmount, idleTimeout: TimeAmount, logger: Logger) {
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            perform(timeouts.connectionOpened(), context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        perform(timeouts.connectionClosed(), context: context)
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(timeouts.connectionOpened(), context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(timeouts.connectionClosed(), context: context)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: perform(timeouts.headRead(), context: context)
        case .body: perform(timeouts.bodyRead(isEnd: false), context: context)
        case .end: perform(timeouts.bodyRead(isEnd: true), context: context)
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        perform(timeouts.readComplete(), context: context)
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            perform(timeouts.responseEnded(), context: context)
        }
        context.write(data, promise: promise)
    }

    private func perform(_ action: ConnectionTimeouts.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            return
        case .stop:
            cancelTimer()
        case .start(let timer):
            cancelTimer()
            let current = generation
            let delay = timer == .header ? headerTimeout : idleTimeout
            scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
                self.fire(timer, generation: current, context: context)
            }
        }
    }

    private func fire(_ timer: ConnectionTimeouts.Timer, generation: Int, context: ChannelHandlerContext) {
        guard generation == self.generation, timeouts.fired(timer) else { return }
        scheduled = nil
        switch timer {
        case .header: logger.debug("closing a connection that sent no complete request head within the header timeout")
        case .idle: logger.debug("closing a connection idle for the idle timeout")
        }
        context.close(promise: nil)
    }

    private func cancelTimer() {
        generation &+= 1
        scheduled?.cancel()
        scheduled = nil
    }
}

@available(*, unavailable)
extension ConnectionTimeoutHandler: Sendable {}
