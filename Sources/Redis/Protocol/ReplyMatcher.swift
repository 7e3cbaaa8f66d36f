import NIOCore

/// Matches replies to the commands that asked for them on one pipelined connection.
///
/// Redis answers commands in the order it received them, so the whole protocol is a FIFO of
/// waiting callers. Each waiter carries a deadline; only the oldest one can be overdue first, so a
/// single timer, armed for the head of the queue, covers every command in flight. The matcher does
/// no I/O: the channel handler carries out what it returns.
///
/// A caller may stop waiting (its task was cancelled) while its command is in flight. Its command
/// cannot be taken back, so its entry stays in the queue without a waiter, holding the place of the
/// reply that will still come; that reply is then read and dropped, and the replies after it still
/// reach their own callers.
struct ReplyMatcher<Waiter> {
    private struct Entry {
        /// `nil` once the caller has left: the reply is still due, and is dropped.
        var waiter: Waiter?
        /// Names the command for ``cancel(id:)``; 0 for commands that cannot be cancelled.
        var id: UInt64
        var deadline: NIODeadline
    }

    private enum State {
        case open
        case closed
    }

    private var queue = CircularBuffer<Entry>(initialCapacity: 16)
    private var state = State.open

    enum EnqueueAction {
        /// Send the command; if `armTimer` is set, (re)arm the timeout for that deadline.
        case send(armTimer: NIODeadline?)
        /// The connection is closing: the command was not sent, fail it as such.
        case notSent
    }

    enum ReceiveAction {
        case deliver(Waiter, RedisReply)
        /// The reply of a command whose caller left: nobody gets it.
        case drop
        /// A reply nobody asked for: the stream is out of step and the connection must close.
        case unexpectedReply
    }

    enum TimerAction {
        /// Nothing is overdue; re-arm for this deadline, or leave the timer off when `nil`.
        case rearm(NIODeadline?)
        /// The head is overdue: fail every waiter with the given error and close the connection,
        /// because replies that come later could no longer be matched to their callers.
        case timeout([Waiter], RedisConnectionError)
    }

    var inFlight: Int { queue.count }

    /// A command goes out. `waiter` is `nil` when its caller left before it was written (the
    /// command was already encoded into a batch); `id` is what ``cancel(id:)`` finds it by.
    mutating func enqueue(_ waiter: Waiter?, id: UInt64 = 0, deadline: NIODeadline) -> EnqueueAction {
        if case .closed = state {
            return .notSent
        }
        queue.append(Entry(waiter: waiter, id: id, deadline: deadline))
        return .send(armTimer: queue.count == 1 ? deadline : nil)
    }

    mutating func receive(_ reply: RedisReply) -> ReceiveAction {
        guard let entry = queue.popFirst() else {
            return .unexpectedReply
        }
        guard let waiter = entry.waiter else {
            return .drop
        }
        return .deliver(waiter, reply)
    }

    /// The caller of command `id` stopped waiting. Returns its waiter, to be failed, if the command
    /// is in flight and still had one; its reply will be dropped when it comes. The deadline stays:
    /// a Redis that does not answer a cancelled command is as stuck as one that does not answer any.
    mutating func cancel(id: UInt64) -> Waiter? {
        guard id != 0, let index = queue.firstIndex(where: { $0.id == id }) else {
            return nil
        }
        defer { queue[index].waiter = nil }
        return queue[index].waiter
    }

    /// The timer fired at `now`.
    mutating func timerFired(now: NIODeadline, timeout: TimeAmount) -> TimerAction {
        guard let head = queue.first else {
            return .rearm(nil)
        }
        guard head.deadline <= now else {
            return .rearm(head.deadline)
        }
        state = .closed
        return .timeout(drain(), .commandTimeout(timeout))
    }

    /// The connection closed: every waiter fails, and every later enqueue is refused.
    mutating func close() -> [Waiter] {
        state = .closed
        return drain()
    }

    private mutating func drain() -> [Waiter] {
        let waiters = queue.compactMap(\.waiter)
        queue.removeAll()
        return waiters
    }
}
