import NIOCore

/// Matches replies to the commands that asked for them on one pipelined connection.
///
/// Redis answers commands in the order it received them, so the whole protocol is a FIFO of
/// waiting callers. Each waiter carries a deadline; only the oldest one can be overdue first, so a
/// single timer, armed for the head of the queue, covers every command in flight. The matcher does
/// no I/O: the channel handler carries out what it returns.
struct ReplyMatcher<Waiter> {
    private struct Entry {
        var waiter: Waiter
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

    mutating func enqueue(_ waiter: Waiter, deadline: NIODeadline) -> EnqueueAction {
        if case .closed = state {
            return .notSent
        }
        queue.append(Entry(waiter: waiter, deadline: deadline))
        return .send(armTimer: queue.count == 1 ? deadline : nil)
    }

    mutating func receive(_ reply: RedisReply) -> ReceiveAction {
        guard let entry = queue.popFirst() else {
            return .unexpectedReply
        }
        return .deliver(entry.waiter, reply)
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
        let waiters = queue.map(\.waiter)
        queue.removeAll()
        return waiters
    }
}
