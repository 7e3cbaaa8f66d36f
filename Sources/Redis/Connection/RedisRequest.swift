import NIOConcurrencyHelpers
import NIOCore

/// A caller waiting for its reply. Checked in debug builds, where the tests run, so that a reply
/// delivered twice or never is caught; unchecked in release builds, where the check's allocation
/// per command is a measurable share of a command's cost.
#if DEBUG
typealias ReplyContinuation = CheckedContinuation<RedisReply, any Error>
nonisolated(nonsending) func withReplyContinuation(_ body: (ReplyContinuation) -> Void) async throws -> RedisReply {
    try await withCheckedThrowingContinuation(body)
}
#else
typealias ReplyContinuation = UnsafeContinuation<RedisReply, any Error>
nonisolated(nonsending) func withReplyContinuation(_ body: (ReplyContinuation) -> Void) async throws -> RedisReply {
    try await withUnsafeThrowingContinuation(body)
}
#endif

/// Where a reply goes: a caller's continuation (the client's path), or a promise (connection setup).
///
/// Each sink is completed exactly once: by its reply, or by the failure of the connection its
/// command was sent on, or, if the command never reached the connection, by ``CommandNotSent``.
enum ReplySink: Sendable {
    case continuation(ReplyContinuation)
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

/// A command's reply on its way: who waits for it, and until when.
struct PendingReply: Sendable {
    var sink: ReplySink
    var deadline: NIODeadline
}

/// The command never left the process because its connection was already closing: unlike a
/// command in flight, it can safely be sent again on the next connection.
struct CommandNotSent: Error {}

/// Commands written to the channel together: their encodings, back to back in one buffer, and who
/// waits for each reply, in the same order. One write and one flush carry them all.
final class RedisBatch: Sendable {
    let bytes: ByteBuffer
    let replies: [PendingReply]
    /// Set by the command handler when it takes the commands over; a batch it never saw (the
    /// channel closed first) is failed by whoever wrote it.
    private let accepted = NIOLockedValueBox(false)

    init(bytes: ByteBuffer, replies: [PendingReply]) {
        self.bytes = bytes
        self.replies = replies
    }

    func accept() {
        accepted.withLockedValue { $0 = true }
    }

    /// Fails every command with ``CommandNotSent`` unless the handler took them over.
    func failUnlessAccepted() {
        guard !accepted.withLockedValue({ $0 }) else { return }
        for reply in replies {
            reply.sink.fail(CommandNotSent())
        }
    }

    /// Writes the batch and flushes; if it never reaches the handler, its commands fail as not sent.
    func write(to channel: any Channel) {
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in self.failUnlessAccepted() }
        channel.writeAndFlush(self, promise: written)
    }
}

/// Collects commands from any number of tasks and hands them to the connection's event loop in
/// batches: the first command of a batch schedules one event-loop task, and the commands that
/// arrive before it runs go out with it, in one write and one flush. Each command is encoded
/// straight into the batch's buffer. One wake-up, one buffer and one syscall serve many calls.
final class CommandOutbox: Sendable {
    let channel: any Channel

    private struct Pending {
        var bytes = ByteBuffer()
        var replies: [PendingReply] = []
        var drainScheduled = false
    }

    private let pending = NIOLockedValueBox(Pending())

    init(channel: any Channel) {
        self.channel = channel
    }

    func send(_ arguments: [RedisArgument], reply: PendingReply) {
        // A caller on the event loop goes through the same drain: scheduled from the loop itself it
        // wakes nothing and runs before the loop polls again, so that every caller resumed by one
        // read (each reply resumes one) adds its command to one write.
        HiredisCommandEncoder.withEncoded(arguments) { command in
            let scheduleDrain = pending.withLockedValue { pending -> Bool in
                if pending.replies.isEmpty {
                    // One allocation of a size that holds a typical batch, rather than a doubling
                    // per few commands.
                    pending.bytes.reserveCapacity(minimumWritableBytes: max(1024, command.count))
                    pending.replies.reserveCapacity(16)
                }
                pending.bytes.writeBytes(command)
                pending.replies.append(reply)
                defer { pending.drainScheduled = true }
                return !pending.drainScheduled
            }
            if scheduleDrain {
                channel.eventLoop.execute { self.drain() }
            }
        }
    }

    private func drain() {
        let batch = pending.withLockedValue { pending -> RedisBatch in
            pending.drainScheduled = false
            defer {
                pending.bytes = ByteBuffer()
                pending.replies = []
            }
            return RedisBatch(bytes: pending.bytes, replies: pending.replies)
        }
        batch.write(to: channel)
    }
}
