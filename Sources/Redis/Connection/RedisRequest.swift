import NIOConcurrencyHelpers
import NIOCore
import Synchronization

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
    /// `nil` once the caller has left (its task was cancelled): the reply is still read, and dropped.
    var sink: ReplySink?
    /// What a cancellation finds the command by; 0 for commands that cannot be cancelled.
    var id: UInt64 = 0
    var deadline: NIODeadline
}

/// Asks the command handler to let go of the caller of command `id`: sent through the pipeline as
/// an outbound user event, so that it reaches the handler on its event loop, after every batch
/// written before it.
struct CancelCommand: Sendable {
    var id: UInt64
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
            reply.sink?.fail(CommandNotSent())
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
///
/// Cancellation costs the hot path no allocation: a command is named by a number from a counter,
/// and a caller that leaves is found by that number where its command is at that moment, in the
/// outbox under its lock or in the handler's queue on the event loop. Each of the two places
/// resumes the caller at most once, in turn with the reply's delivery, so no per-command box with
/// its own atomic state is needed to decide who resumes it.
final class CommandOutbox: Sendable {
    let channel: any Channel
    private let lastCommandID = Atomic<UInt64>(0)

    private struct Pending {
        var bytes = ByteBuffer()
        var replies: [PendingReply] = []
        var drainScheduled = false
    }

    private let pending = NIOLockedValueBox(Pending())

    init(channel: any Channel) {
        self.channel = channel
    }

    /// A number no other command of this outbox has, for ``cancel(id:)``.
    func makeCommandID() -> UInt64 {
        lastCommandID.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// Queues the command, unless the calling task is cancelled: then nothing is sent and the
    /// reply's sink fails with `CancellationError`.
    func send(_ arguments: [RedisArgument], asking: Bool = false, reply: PendingReply) {
        // A caller on the event loop goes through the same drain: scheduled from the loop itself it
        // wakes nothing and runs before the loop polls again, so that every caller resumed by one
        // read (each reply resumes one) adds its command to one write.
        HiredisCommandEncoder.withEncoded(arguments) { command in
            let scheduleDrain = pending.withLockedValue { pending -> Bool? in
                // Under the lock that ``cancel(id:)`` takes: a task is marked cancelled before its
                // cancellation handler runs, so either this sees the mark, or the handler finds the
                // command here (or later in the handler's queue).
                if Task.isCancelled {
                    return nil
                }
                if pending.replies.isEmpty {
                    // One allocation of a size that holds a typical batch, rather than a doubling
                    // per few commands.
                    pending.bytes.reserveCapacity(minimumWritableBytes: max(1024, command.count))
                    pending.replies.reserveCapacity(16)
                }
                if asking {
                    // Its `+OK` is read and dropped; the command after it is the one that counts.
                    pending.bytes.writeStaticString("*1\r\n$6\r\nASKING\r\n")
                    pending.replies.append(PendingReply(sink: nil, deadline: reply.deadline))
                }
                pending.bytes.writeBytes(command)
                pending.replies.append(reply)
                defer { pending.drainScheduled = true }
                return !pending.drainScheduled
            }
            switch scheduleDrain {
            case nil: reply.sink?.fail(CancellationError())
            case true?: channel.eventLoop.execute { self.drain() }
            case false?: break
            }
        }
    }

    /// The caller of command `id` stopped waiting: it is resumed with `CancellationError` now if its
    /// command is still here (the command still goes out, and its reply is dropped), or by the
    /// handler on the event loop if the command was written. A command already answered or failed
    /// is not found, and nothing happens.
    func cancel(id: UInt64) {
        let sink = pending.withLockedValue { pending -> ReplySink?? in
            guard let index = pending.replies.firstIndex(where: { $0.id == id }) else { return nil }
            defer { pending.replies[index].sink = nil }
            return .some(pending.replies[index].sink)
        }
        switch sink {
        case let sink??:
            sink.fail(CancellationError())
        case .some(nil):
            break
        case nil:
            channel.triggerUserOutboundEvent(CancelCommand(id: id), promise: nil)
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
