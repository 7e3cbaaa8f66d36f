import NIOConcurrencyHelpers
import NIOCore

/// A command on its way to Redis: its encoding, who waits for its reply, and until when.
struct RedisRequest: Sendable {
    var encoded: ByteBuffer
    var reply: ReplySink
    var deadline: NIODeadline
}

/// Where a reply goes: a caller's continuation (the client's path), or a promise (connection setup).
///
/// Each request's sink is completed exactly once: by its reply, or by the failure of the connection
/// it was sent on, or, if it never reached the connection, by ``CommandNotSent``.
enum ReplySink: Sendable {
    case continuation(CheckedContinuation<RedisReply, any Error>)
    case promise(EventLoopPromise<RedisReply>)

    func succeed(_ reply: RedisReply) {
        switch self {
        case .continuation(let continuation): continuation.resume(returning: reply)
        case .promise(let promise): promise.succeed(reply)
        }
    }

    func fail(_ error: any Error) {
        switch self {
        case .continuation(let continuation): continuation.resume(throwing: error)
        case .promise(let promise): promise.fail(error)
        }
    }
}

/// The command never left the process because its connection was already closing: unlike a
/// command in flight, it can safely be sent again on the next connection.
struct CommandNotSent: Error {}

/// Requests written to the channel together, with one flush.
final class RedisBatch: Sendable {
    let requests: [RedisRequest]
    /// Set by the command handler when it takes the requests over; a batch it never saw (the channel
    /// closed first) is failed by whoever wrote it.
    private let accepted = NIOLockedValueBox(false)

    init(_ requests: [RedisRequest]) {
        self.requests = requests
    }

    func accept() {
        accepted.withLockedValue { $0 = true }
    }

    /// Fails every request with ``CommandNotSent`` unless the handler took them over.
    func failUnlessAccepted() {
        guard !accepted.withLockedValue({ $0 }) else { return }
        for request in requests {
            request.reply.fail(CommandNotSent())
        }
    }

    /// Writes the batch and flushes; if it never reaches the handler, its requests fail as not sent.
    func write(to channel: any Channel) {
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in self.failUnlessAccepted() }
        channel.writeAndFlush(self, promise: written)
    }
}

/// Collects commands from any number of tasks and hands them to the connection's event loop in
/// batches: the first command of a batch schedules one event-loop task, and the commands that
/// arrive before it runs go out with it, in one flush. One wake-up and one syscall serve many calls.
final class CommandOutbox: Sendable {
    let channel: any Channel

    private struct Pending {
        var requests: [RedisRequest] = []
        var drainScheduled = false
    }

    private let pending = NIOLockedValueBox(Pending())

    init(channel: any Channel) {
        self.channel = channel
    }

    func send(_ request: RedisRequest) {
        let onLoop = channel.eventLoop.inEventLoop
        let action = pending.withLockedValue { pending -> SendAction in
            // On the event loop with nothing queued ahead of it, the command can go out at once.
            if onLoop, !pending.drainScheduled {
                return .writeNow
            }
            pending.requests.append(request)
            defer { pending.drainScheduled = true }
            return pending.drainScheduled ? .queued : .scheduleDrain
        }
        switch action {
        case .writeNow: RedisBatch([request]).write(to: channel)
        case .scheduleDrain: channel.eventLoop.execute { self.drain() }
        case .queued: break
        }
    }

    private enum SendAction {
        case writeNow
        case scheduleDrain
        case queued
    }

    private func drain() {
        let requests = pending.withLockedValue { pending -> [RedisRequest] in
            pending.drainScheduled = false
            defer { pending.requests.removeAll(keepingCapacity: true) }
            return pending.requests
        }
        RedisBatch(requests).write(to: channel)
    }
}
