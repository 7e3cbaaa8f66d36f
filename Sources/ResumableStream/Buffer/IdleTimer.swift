import NIOCore
import Synchronization

/// Tells a reader that has waited for `interval` without reading anything (so that its writer can
/// send a heartbeat), with one timer for the reader's whole life.
///
/// A timer armed for every wait and cancelled by every chunk would cost a scheduling and a
/// cancellation per chunk per reader: with a thousand readers in step, that is most of the work
/// of a chunk. This timer is rescheduled only when it fires: it then looks at when the reader last
/// read, and either wakes the reader's current wait or sleeps until one interval after that read.
public final class IdleTimer: Sendable {
    private struct State {
        var lastActivity: NIODeadline
        /// The wait the timer would end: its buffer and its waiter's number.
        var waiter: (buffer: StreamBuffer, id: Int)?
        var scheduled: Scheduled<Void>?
        var cancelled = false
    }

    let interval: TimeAmount
    private let eventLoop: any EventLoop
    private let state: Mutex<State>

    /// Starts the timer; ``cancel()`` stops it (the reader's writer calls it when it is done).
    public init(interval: TimeAmount, on eventLoop: any EventLoop) {
        self.interval = interval
        self.eventLoop = eventLoop
        self.state = Mutex(State(lastActivity: .now()))
        schedule(at: .now() + interval)
    }

    public func cancel() {
        let scheduled = state.withLock { state in
            state.cancelled = true
            state.waiter = nil
            defer { state.scheduled = nil }
            return state.scheduled
        }
        scheduled?.cancel()
    }

    /// Called by the buffer, under its lock, as the reader starts waiting.
    func waiting(on buffer: StreamBuffer, id: Int) {
        state.withLock { $0.waiter = (buffer, id) }
    }

    /// Called by the buffer once the reader's read or wait is over, with one lock: whether it got
    /// text (its activity, from which the next interval counts).
    func stoppedWaiting(gotText: Bool) {
        let now: NIODeadline? = gotText ? .now() : nil
        state.withLock { state in
            state.waiter = nil
            if let now { state.lastActivity = now }
        }
    }

    private func schedule(at deadline: NIODeadline) {
        let scheduled = eventLoop.scheduleTask(deadline: deadline) { [weak self] () -> Void in self?.fire() }
        let stale = state.withLock { state -> Bool in
            guard !state.cancelled else { return true }
            state.scheduled = scheduled
            return false
        }
        if stale { scheduled.cancel() }
    }

    private func fire() {
        let now = NIODeadline.now()
        let (waiter, next) = state.withLock { state -> ((buffer: StreamBuffer, id: Int)?, NIODeadline?) in
            guard !state.cancelled else { return (nil, nil) }
            let due = state.lastActivity + interval
            guard now >= due else { return (nil, due) }
            // A reader that is not waiting is writing: it is not idle, however long that takes.
            guard let waiter = state.waiter else { return (nil, now + interval) }
            state.waiter = nil
            state.lastActivity = now
            return (waiter, now + interval)
        }
        waiter.map { $0.buffer.wakeIdle($0.id) }
        if let next { schedule(at: next) }
    }
}
