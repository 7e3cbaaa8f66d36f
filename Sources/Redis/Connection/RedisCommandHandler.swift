import NIOCore

/// Sends pipelined commands and hands each reply to the command that asked for it.
///
/// Any number of commands may be in flight. The subscriber removes this handler once the
/// connection is set up, which is why it is removable.
final class RedisCommandHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = RedisReply
    typealias OutboundIn = RedisBatch
    typealias OutboundOut = ByteBuffer

    private var matcher = ReplyMatcher<ReplySink>()
    private let commandTimeout: TimeAmount
    private var timer: (task: Scheduled<Void>, deadline: NIODeadline)?
    private let counters: PipelineCounters?

    init(commandTimeout: TimeAmount, counters: PipelineCounters? = nil) {
        self.commandTimeout = commandTimeout
        self.counters = counters
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let batch = unwrapOutboundIn(data)
        batch.accept()
        var sent = 0
        for reply in batch.replies {
            switch matcher.enqueue(reply.sink, id: reply.id, deadline: reply.deadline) {
            case .send(let armTimer):
                sent += 1
                // A timer armed earlier may be set for a later deadline (the handshake runs on the
                // connect timeout); the new head must not wait for it.
                if let armTimer, armTimer < timer?.deadline ?? .distantFuture {
                    timer?.task.cancel()
                    scheduleTimer(context: context, deadline: armTimer)
                }
            case .notSent:
                reply.sink?.fail(CommandNotSent())
            }
        }
        // The matcher refuses either every command of a batch (it is closed) or none.
        if sent > 0 {
            context.write(wrapOutboundOut(batch.bytes), promise: nil)
            counters?.recordWrite(commands: sent, inFlight: matcher.inFlight)
        }
        promise?.succeed()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch matcher.receive(unwrapInboundIn(data)) {
        case .deliver(let sink, let reply):
            sink.succeed(reply)
        case .drop:
            break
        case .unexpectedReply:
            context.fireErrorCaught(RedisProtocolError(message: "a reply arrived with no command waiting for it"))
            context.close(promise: nil)
        }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let cancel = event as? CancelCommand else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        matcher.cancel(id: cancel.id)?.fail(CancellationError())
        promise?.succeed()
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
        for sink in matcher.close() {
            sink.fail(error)
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
            case .timeout(let sinks, let error):
                for sink in sinks {
                    sink.fail(error)
                }
                context.close(promise: nil)
            }
        }
        timer = (task, deadline)
    }
}

@available(*, unavailable)
extension RedisCommandHandler: Sendable {}
