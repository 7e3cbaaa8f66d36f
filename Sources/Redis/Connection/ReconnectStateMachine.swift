import NIOCore

/// The life of a connection that reopens itself when it is lost: the first connection, the
/// connection in use, the reconnection with its backoff and the callers waiting for it, and the end.
///
/// A value type that does no I/O: each event returns what to do, and ``ReconnectingConnection``
/// carries it out. Connections are told apart by a generation number that the machine gives each
/// one it adopts, so that the loss of an old connection (its close reported late) is recognised
/// and ignored.
struct ReconnectStateMachine<Connection, Waiter> {
    fileprivate enum State {
        /// `start()` has not been called.
        case idle
        /// The first connection is opening.
        case starting
        case connected(Connection, generation: Int)
        case reconnecting(Reconnecting)
        case closed
    }

    fileprivate struct Reconnecting {
        /// Attempts that failed so far; the next pause is the backoff for this many.
        var failedAttempts: Int
        /// An attempt is open right now; otherwise the machine waits for the retry timer.
        var isOpening: Bool
        var waiters: [(id: Int, waiter: Waiter)]
    }

    enum Action {
        case none
        /// Open a connection, and report `startSucceeded`/`startFailed` (the first time) or
        /// `attemptSucceeded`/`attemptFailed` (later).
        case open
        /// `connection` is now the one in use: report `connectionLost(generation:)` when it closes,
        /// set it up for its owner, and hand it to `waiters`.
        case adopt(Connection, generation: Int, waiters: [Waiter])
        /// Close `connection`: nobody will use it (the owner closed the client, or it was opened
        /// after that).
        case closeConnection(Connection)
        /// The connection in use was lost: tell the owner, and open a new one at once.
        case reconnect
        /// The attempt failed: report `retryTimerFired` after `delay`.
        case scheduleRetry(after: TimeAmount)
        /// The owner closed the client while it reconnected: fail `waiters`, cancel any retry timer.
        case failWaiters([Waiter])
    }

    enum WaiterAction {
        /// Use this connection now.
        case ready(Connection)
        /// Wait: the waiter is handed over in an `adopt` action, or is returned by
        /// `waiterLeft(id:)` when its caller gives up.
        case wait(id: Int)
        /// There is no connection to wait for.
        case fail(RedisConnectionError)
    }

    private var state = State.idle
    private var nextGeneration = 0
    private var nextWaiterID = 0
    private let backoff: @Sendable (Int) -> TimeAmount
    private var random: any RandomNumberGenerator & Sendable

    /// - Parameters:
    ///   - backoff: the pause before the retry after `n` failed attempts (``RedisConfiguration/reconnectDelay(attempt:)``).
    ///   - random: where the jitter comes from; tests inject a fixed one.
    init(
        backoff: @escaping @Sendable (Int) -> TimeAmount,
        random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator()
    ) {
        self.backoff = backoff
        self.random = random
    }

    /// The connection in use, if there is one right now.
    var currentConnection: Connection? {
        if case .connected(let connection, _) = state { return connection }
        return nil
    }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Where the machine is, without what it holds: for tests and logs.
    enum Phase: Equatable {
        case idle, starting, connected, reconnecting(opening: Bool), closed
    }

    var phase: Phase {
        switch state {
        case .idle: return .idle
        case .starting: return .starting
        case .connected: return .connected
        case .reconnecting(let reconnecting): return .reconnecting(opening: reconnecting.isOpening)
        case .closed: return .closed
        }
    }

    // MARK: The first connection

    mutating func start() -> Action {
        guard case .idle = state else { return .none }
        state = .starting
        return .open
    }

    /// The first connection is open. An `adopt` means success; a `closeConnection` means the owner
    /// closed the client meanwhile, and the start fails with ``RedisConnectionError/closed``.
    mutating func startSucceeded(_ connection: Connection) -> Action {
        guard case .starting = state else { return .closeConnection(connection) }
        return adopt(connection, waiters: [])
    }

    /// The first connection could not be opened. That is final: a wrong password or an unreachable
    /// server is reported to the caller instead of being retried in the background.
    mutating func startFailed() -> Action {
        if case .starting = state { state = .closed }
        return .none
    }

    // MARK: Losing and reopening

    mutating func connectionLost(generation: Int) -> Action {
        guard case .connected(_, let current) = state, current == generation else { return .none }
        state = .reconnecting(Reconnecting(failedAttempts: 0, isOpening: true, waiters: []))
        return .reconnect
    }

    mutating func attemptSucceeded(_ connection: Connection) -> Action {
        guard case .reconnecting(let reconnecting) = state, reconnecting.isOpening else {
            return .closeConnection(connection)
        }
        return adopt(connection, waiters: reconnecting.waiters.map(\.waiter))
    }

    mutating func attemptFailed() -> Action {
        guard case .reconnecting(var reconnecting) = state, reconnecting.isOpening else { return .none }
        let delay = jittered(backoff(reconnecting.failedAttempts))
        reconnecting.failedAttempts += 1
        reconnecting.isOpening = false
        state = .reconnecting(reconnecting)
        return .scheduleRetry(after: delay)
    }

    mutating func retryTimerFired() -> Action {
        guard case .reconnecting(var reconnecting) = state, !reconnecting.isOpening else { return .none }
        reconnecting.isOpening = true
        state = .reconnecting(reconnecting)
        return .open
    }

    // MARK: The owner

    mutating func closeRequested() -> Action {
        let previous = state
        state = .closed
        switch previous {
        case .connected(let connection, _):
            return .closeConnection(connection)
        case .reconnecting(let reconnecting):
            return .failWaiters(reconnecting.waiters.map(\.waiter))
        case .idle, .starting, .closed:
            // A first connection still opening is closed when it arrives (`startSucceeded`).
            return .none
        }
    }

    // MARK: Callers waiting for a connection

    mutating func waiterArrived(_ waiter: Waiter) -> WaiterAction {
        switch state {
        case .connected(let connection, _):
            return .ready(connection)
        case .reconnecting(var reconnecting):
            nextWaiterID += 1
            reconnecting.waiters.append((nextWaiterID, waiter))
            state = .reconnecting(reconnecting)
            return .wait(id: nextWaiterID)
        case .idle, .starting, .closed:
            return .fail(.closed)
        }
    }

    /// The caller of waiter `id` gives up (its deadline passed, or its task was cancelled). Returns
    /// the waiter to fail, unless it was handed a connection or failed already.
    mutating func waiterLeft(id: Int) -> Waiter? {
        guard case .reconnecting(var reconnecting) = state,
            let index = reconnecting.waiters.firstIndex(where: { $0.id == id })
        else { return nil }
        let waiter = reconnecting.waiters.remove(at: index).waiter
        state = .reconnecting(reconnecting)
        return waiter
    }

    // MARK: Helpers

    private mutating func adopt(_ connection: Connection, waiters: [Waiter]) -> Action {
        let generation = nextGeneration
        nextGeneration += 1
        state = .connected(connection, generation: generation)
        return .adopt(connection, generation: generation, waiters: waiters)
    }

    /// Between half the pause and all of it ("equal jitter"): clients that lost the same Redis at the
    /// same moment do not all come back in the same instant, and none waits longer than the backoff.
    private mutating func jittered(_ delay: TimeAmount) -> TimeAmount {
        let half = delay.nanoseconds / 2
        guard half > 0 else { return delay }
        // half × (a random 64-bit fraction): one draw, no rejection loop, so any generator a test
        // injects (even a constant one) gives a definite answer.
        let cut = UInt64(half).multipliedFullWidth(by: random.next()).high
        return .nanoseconds(delay.nanoseconds - Int64(cut))
    }
}

extension ReconnectStateMachine: Sendable where Connection: Sendable, Waiter: Sendable {}
extension ReconnectStateMachine.State: Sendable where Connection: Sendable, Waiter: Sendable {}
extension ReconnectStateMachine.Reconnecting: Sendable where Connection: Sendable, Waiter: Sendable {}
