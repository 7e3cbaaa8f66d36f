import NIOCore

/// The command never left the process because its connection was already closing: unlike a
/// command in flight, it can safely be sent again on the next connection.
struct CommandNotSent: Error {}

/// A command on its way to Redis: its encoding, and the promise its reply completes.
struct RedisRequest {
    var encoded: ByteBuffer
    var promise: EventLoopPromise<RedisReply>
    var deadline: NIODeadline
}

/// Sends pipelined commands and hands each reply to the command that asked for it.
///
/// Any number of commands may be in flight. The subscriber removes this handler once the
/// connection is set up, which is why it is removable. Flushes are coalesced: every command written during one
/// turn of the event loop goes out in one write to the socket.
final class RedisCommandHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = RedisReply
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private var matcher = ReplyMatcher<EventLoopPromise<RedisReply>>()
    private let commandTimeout: TimeAmount
    private var timer: (task: Scheduled<Void>, deadline: NIODeadline)?
    private var flushPending = false

    init(commandTimeout: TimeAmount) {
        self.commandTimeout = commandTimeout
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        switch matcher.enqueue(request.promise, deadline: request.deadline) {
        case .send(let armTimer):
            context.write(wrapOutboundOut(request.encoded), promise: promise)
            // A timer armed earlier may be set for a later deadline (the handshake runs on the
            // connect timeout); the new head must not wait for it.
            if let armTimer, armTimer < timer?.deadline ?? .distantFuture {
                timer?.task.cancel()
                scheduleTimer(context: context, deadline: armTimer)
            }
        case .notSent:
            request.promise.fail(CommandNotSent())
            promise?.fail(CommandNotSent())
        }
    }

    func flush(context: ChannelHandlerContext) {
        guard !flushPending else { return }
        flushPending = true
        // Commands written by other tasks are already queued on the event loop behind this one:
        // flushing after them sends the whole batch in one syscall.
        context.eventLoop.assumeIsolated().execute {
            self.flushPending = false
            context.flush()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch matcher.receive(unwrapInboundIn(data)) {
        case .deliver(let promise, let reply):
            promise.succeed(reply)
        case .unexpectedReply:
            context.fireErrorCaught(RedisProtocolError(message: "a reply arrived with no command waiting for it"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(with: .connectionClosed)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(with: .connectionClosed)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(with: .connectionClosed)
        context.close(promise: nil)
    }

    private func failAll(with error: RedisConnectionError) {
        timer?.task.cancel()
        timer = nil
        for promise in matcher.close() {
            promise.fail(error)
        }
    }

    private func scheduleTimer(context: ChannelHandlerContext, deadline: NIODeadline) {
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timer = nil
            switch self.matcher.timerFired(now: .now(), timeout: self.commandTimeout) {
            case .rearm(let deadline):
                if let deadline {
                    self.scheduleTimer(context: context, deadline: deadline)
                }
            case .timeout(let promises, let error):
                for promise in promises {
                    promise.fail(error)
                }
                context.close(promise: nil)
            }
        }
        timer = (task, deadline)
    }
}

@available(*, unavailable)
extension RedisCommandHandler: Sendable {}
