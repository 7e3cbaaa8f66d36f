import NIOCore

/// When the subscriber pings Redis, and when it gives up on a connection that does not answer.
///
/// A subscribed connection only receives: when Redis stops answering (paused, or the connection is
/// half-open after a network fault) nothing fails by itself, and the consumers would simply hear
/// nothing. So the subscriber sends `PING` every `interval` (RESP2 allows it in subscribe mode, and
/// Redis answers with a `pong` push) and closes the connection if the answer takes longer than
/// `timeout`; the reconnection then restores every channel and reports the gap.
///
/// A value type that does no I/O, driven with the time of each event; one timer, re-armed at the
/// deadline each action names, is all it needs.
struct SubscriberHealthCheck {
    private enum State {
        /// No connection, or the check is off.
        case stopped
        /// The next PING goes out at this time.
        case idle(nextPing: NIODeadline)
        /// A PING is out; the connection is given up at this time.
        case awaitingPong(deadline: NIODeadline)
    }

    enum Action: Equatable {
        case none
        /// (Re)arm the timer for this time, replacing any earlier one.
        case arm(NIODeadline)
        /// Send PING now and arm the timer for this time.
        case sendPing(thenArm: NIODeadline)
        /// Redis did not answer in time: close the connection (the reconnection follows).
        case closeConnection
    }

    let interval: TimeAmount
    let timeout: TimeAmount
    private var state = State.stopped

    /// - Parameters:
    ///   - interval: the pause between an answer and the next PING; zero or less turns the check off.
    ///   - timeout: how long an answer may take.
    init(interval: TimeAmount, timeout: TimeAmount) {
        self.interval = interval
        self.timeout = timeout
    }

    var isEnabled: Bool { interval > .zero }

    mutating func connected(now: NIODeadline) -> Action {
        guard isEnabled else { return .none }
        state = .idle(nextPing: now + interval)
        return .arm(now + interval)
    }

    mutating func timerFired(now: NIODeadline) -> Action {
        switch state {
        case .stopped:
            return .none
        case .idle(let nextPing):
            guard now >= nextPing else { return .arm(nextPing) }
            state = .awaitingPong(deadline: now + timeout)
            return .sendPing(thenArm: now + timeout)
        case .awaitingPong(let deadline):
            guard now >= deadline else { return .arm(deadline) }
            state = .stopped
            return .closeConnection
        }
    }

    /// Redis answered the PING (with a pong, or with an error: either way it is there).
    mutating func pongReceived(now: NIODeadline) -> Action {
        guard case .awaitingPong = state else { return .none }
        state = .idle(nextPing: now + interval)
        return .arm(now + interval)
    }

    /// The connection is gone (or the subscriber closed): nothing to check until the next one.
    mutating func disconnected() {
        state = .stopped
    }
}
