import NIOCore
import Testing

@testable import Redis

/// Connections and waiters are plain strings; the backoff doubles from 100 ms.
typealias ReconnectMachine = ReconnectStateMachine<String, String>

@Suite("Reconnect state machine")
struct ReconnectStateMachineTests {
    /// Every event the machine knows, as the tests apply it.
    enum Event: CaseIterable, CustomTestStringConvertible {
        case start, startSucceeded, startFailed, lostCurrent, lostStale, attemptSucceeded, attemptFailed,
            retryTimerFired, closeRequested, waiterArrived, waiterLeft

        var testDescription: String { "\(self)" }
    }

    /// The states the machine can be in, each reached through events only.
    enum Start: CaseIterable, CustomTestStringConvertible {
        case idle, starting, connected, reconnectingOpening, reconnectingWaiting, closed

        var testDescription: String { "\(self)" }

        /// In the reconnecting states waiter "w1" (id 1) is waiting; the connection in use is "c0".
        func machine() -> ReconnectMachine {
            var machine = ReconnectMachine(backoff: backoff, random: ZeroRandom())
            switch self {
            case .idle:
                break
            case .starting:
                _ = machine.start()
            case .connected:
                _ = machine.start()
                _ = machine.startSucceeded("c0")
            case .reconnectingOpening, .reconnectingWaiting:
                _ = machine.start()
                _ = machine.startSucceeded("c0")
                _ = machine.connectionLost(generation: 0)
                _ = machine.waiterArrived("w1")
                if self == .reconnectingWaiting { _ = machine.attemptFailed() }
            case .closed:
                _ = machine.closeRequested()
            }
            return machine
        }
    }

    /// What each event does in each state: the action, and the state after it.
    static let expectations: [Start: [Event: (ReconnectOutcome, ReconnectMachine.Phase)]] = [
        .idle: [
            .start: (.open, .starting),
            .startSucceeded: (.close("c1"), .idle),
            .startFailed: (.none, .idle),
            .lostCurrent: (.none, .idle),
            .lostStale: (.none, .idle),
            .attemptSucceeded: (.close("c1"), .idle),
            .attemptFailed: (.none, .idle),
            .retryTimerFired: (.none, .idle),
            .closeRequested: (.none, .closed),
            .waiterArrived: (.fail(.closed), .idle),
            .waiterLeft: (.left(nil), .idle),
        ],
        .starting: [
            .start: (.none, .starting),
            .startSucceeded: (.adopt("c1", generation: 0, waiters: []), .connected),
            .startFailed: (.none, .closed),
            .lostCurrent: (.none, .starting),
            .lostStale: (.none, .starting),
            .attemptSucceeded: (.close("c1"), .starting),
            .attemptFailed: (.none, .starting),
            .retryTimerFired: (.none, .starting),
            .closeRequested: (.none, .closed),
            .waiterArrived: (.fail(.closed), .starting),
            .waiterLeft: (.left(nil), .starting),
        ],
        .connected: [
            .start: (.none, .connected),
            .startSucceeded: (.close("c1"), .connected),
            .startFailed: (.none, .connected),
            .lostCurrent: (.reconnect, .reconnecting(opening: true)),
            .lostStale: (.none, .connected),
            .attemptSucceeded: (.close("c1"), .connected),
            .attemptFailed: (.none, .connected),
            .retryTimerFired: (.none, .connected),
            .closeRequested: (.close("c0"), .closed),
            .waiterArrived: (.ready("c0"), .connected),
            .waiterLeft: (.left(nil), .connected),
        ],
        .reconnectingOpening: [
            .start: (.none, .reconnecting(opening: true)),
            .startSucceeded: (.close("c1"), .reconnecting(opening: true)),
            .startFailed: (.none, .reconnecting(opening: true)),
            .lostCurrent: (.none, .reconnecting(opening: true)),
            .lostStale: (.none, .reconnecting(opening: true)),
            .attemptSucceeded: (.adopt("c1", generation: 1, waiters: ["w1"]), .connected),
            .attemptFailed: (.retry(.milliseconds(100)), .reconnecting(opening: false)),
            .retryTimerFired: (.none, .reconnecting(opening: true)),
            .closeRequested: (.failWaiters(["w1"]), .closed),
            .waiterArrived: (.wait(id: 2), .reconnecting(opening: true)),
            .waiterLeft: (.left("w1"), .reconnecting(opening: true)),
        ],
        .reconnectingWaiting: [
            .start: (.none, .reconnecting(opening: false)),
            .startSucceeded: (.close("c1"), .reconnecting(opening: false)),
            .startFailed: (.none, .reconnecting(opening: false)),
            .lostCurrent: (.none, .reconnecting(opening: false)),
            .lostStale: (.none, .reconnecting(opening: false)),
            // No attempt is open: a connection that arrives anyway is not adopted.
            .attemptSucceeded: (.close("c1"), .reconnecting(opening: false)),
            .attemptFailed: (.none, .reconnecting(opening: false)),
            .retryTimerFired: (.open, .reconnecting(opening: true)),
            .closeRequested: (.failWaiters(["w1"]), .closed),
            .waiterArrived: (.wait(id: 2), .reconnecting(opening: false)),
            .waiterLeft: (.left("w1"), .reconnecting(opening: false)),
        ],
        .closed: [
            .start: (.none, .closed),
            .startSucceeded: (.close("c1"), .closed),
            .startFailed: (.none, .closed),
            .lostCurrent: (.none, .closed),
            .lostStale: (.none, .closed),
            .attemptSucceeded: (.close("c1"), .closed),
            .attemptFailed: (.none, .closed),
            .retryTimerFired: (.none, .closed),
            .closeRequested: (.none, .closed),
            .waiterArrived: (.fail(.closed), .closed),
            .waiterLeft: (.left(nil), .closed),
        ],
    ]

    @Test(arguments: Start.allCases, Event.allCases)
    func everyEventInEveryState(start: Start, event: Event) throws {
        var machine = start.machine()
        let expected = try #require(Self.expectations[start]?[event])
        #expect(apply(event, to: &machine) == expected.0)
        #expect(machine.phase == expected.1)
    }

    @Test func theTableCoversEveryStateAndEvent() {
        for start in Start.allCases {
            #expect(Self.expectations[start]?.count == Event.allCases.count, "\(start)")
        }
    }

    @Test func theBackoffGrowsWithEachFailedAttemptAndStartsOverAfterASuccess() {
        var machine = Start.connected.machine()
        _ = machine.connectionLost(generation: 0)
        var delays: [TimeAmount] = []
        for _ in 0..<4 {
            guard case .scheduleRetry(let delay) = machine.attemptFailed() else {
                Issue.record("no retry scheduled")
                return
            }
            delays.append(delay)
            #expect(outcome(machine.retryTimerFired()) == .open)
        }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800)])

        #expect(outcome(machine.attemptSucceeded("c1")) == .adopt("c1", generation: 1, waiters: []))
        #expect(outcome(machine.connectionLost(generation: 1)) == .reconnect)
        #expect(outcome(machine.attemptFailed()) == .retry(.milliseconds(100)))
    }

    @Test func waitersGetTheNewConnectionInTheOrderTheyCameExceptThoseThatLeft() {
        var machine = Start.connected.machine()
        _ = machine.connectionLost(generation: 0)
        var ids: [String: Int] = [:]
        for waiter in ["a", "b", "c", "d"] {
            guard case .wait(let id) = machine.waiterArrived(waiter) else {
                Issue.record("\(waiter) did not wait")
                return
            }
            ids[waiter] = id
        }
        #expect(Set(ids.values).count == 4)
        #expect(machine.waiterLeft(id: ids["b"] ?? 0) == "b")
        #expect(machine.waiterLeft(id: ids["b"] ?? 0) == nil)
        _ = machine.attemptFailed()
        _ = machine.retryTimerFired()
        #expect(outcome(machine.attemptSucceeded("c1")) == .adopt("c1", generation: 1, waiters: ["a", "c", "d"]))
        // Handed over: leaving now finds nothing to fail.
        #expect(machine.waiterLeft(id: ids["a"] ?? 0) == nil)
        #expect(machine.currentConnection == "c1")
    }

    @Test func theLossOfAnEarlierConnectionIsIgnored() {
        var machine = Start.connected.machine()
        _ = machine.connectionLost(generation: 0)
        _ = machine.attemptSucceeded("c1")
        // "c0"'s close reported again, or late.
        #expect(outcome(machine.connectionLost(generation: 0)) == .none)
        #expect(machine.currentConnection == "c1")
        #expect(outcome(machine.connectionLost(generation: 1)) == .reconnect)
        #expect(machine.currentConnection == nil)
    }

    @Test func aConnectionOpenedAfterTheOwnerClosedIsClosedAndTheStartFails() {
        var machine = ReconnectMachine(backoff: backoff)
        #expect(outcome(machine.start()) == .open)
        #expect(outcome(machine.closeRequested()) == .none)
        #expect(outcome(machine.startSucceeded("c0")) == .close("c0"))
        #expect(machine.phase == .closed)
    }

    @Test func jitterKeepsTheRetryBetweenHalfTheBackoffAndAllOfIt() {
        for value: UInt64 in [0, 1 << 20, UInt64.max / 3, UInt64.max / 2, UInt64.max] {
            var machine = ReconnectMachine(backoff: backoff, random: FixedRandom(value: value))
            _ = machine.start()
            _ = machine.startSucceeded("c0")
            _ = machine.connectionLost(generation: 0)
            guard case .scheduleRetry(let delay) = machine.attemptFailed() else {
                Issue.record("no retry scheduled")
                return
            }
            #expect(delay >= .milliseconds(50) && delay <= .milliseconds(100), "\(value): \(delay)")
        }
        var lowest = ReconnectMachine(backoff: backoff, random: FixedRandom(value: .max))
        _ = lowest.start()
        _ = lowest.startSucceeded("c0")
        _ = lowest.connectionLost(generation: 0)
        // The largest draw takes off just under half.
        #expect(outcome(lowest.attemptFailed()) == .retry(.nanoseconds(50_000_001)))
    }

    private func apply(_ event: Event, to machine: inout ReconnectMachine) -> ReconnectOutcome {
        switch event {
        case .start: outcome(machine.start())
        case .startSucceeded: outcome(machine.startSucceeded("c1"))
        case .startFailed: outcome(machine.startFailed())
        case .lostCurrent: outcome(machine.connectionLost(generation: 0))
        case .lostStale: outcome(machine.connectionLost(generation: 7))
        case .attemptSucceeded: outcome(machine.attemptSucceeded("c1"))
        case .attemptFailed: outcome(machine.attemptFailed())
        case .retryTimerFired: outcome(machine.retryTimerFired())
        case .closeRequested: outcome(machine.closeRequested())
        case .waiterArrived: outcome(machine.waiterArrived("w2"))
        case .waiterLeft: .left(machine.waiterLeft(id: 1))
        }
    }

    private func outcome(_ action: ReconnectMachine.Action) -> ReconnectOutcome {
        switch action {
        case .none: .none
        case .open: .open
        case .adopt(let connection, let generation, let waiters): .adopt(connection, generation: generation, waiters: waiters)
        case .closeConnection(let connection): .close(connection)
        case .reconnect: .reconnect
        case .scheduleRetry(let delay): .retry(delay)
        case .failWaiters(let waiters): .failWaiters(waiters)
        }
    }

    private func outcome(_ action: ReconnectMachine.WaiterAction) -> ReconnectOutcome {
        switch action {
        case .ready(let connection): .ready(connection)
        case .wait(let id): .wait(id: id)
        case .fail(let error): .fail(error)
        }
    }
}

/// An Equatable mirror of everything the machine answers.
enum ReconnectOutcome: Equatable {
    case none, open, reconnect
    case adopt(String, generation: Int, waiters: [String])
    case close(String)
    case retry(TimeAmount)
    case failWaiters([String])
    case ready(String)
    case wait(id: Int)
    case fail(RedisConnectionError)
    case left(String?)
}

@Sendable private func backoff(_ failedAttempts: Int) -> TimeAmount {
    .milliseconds(100 << min(failedAttempts, 10))
}

/// No jitter: a generator whose every number is 0 keeps the full backoff.
private struct ZeroRandom: RandomNumberGenerator, Sendable {
    mutating func next() -> UInt64 { 0 }
}

private struct FixedRandom: RandomNumberGenerator, Sendable {
    var value: UInt64
    mutating func next() -> UInt64 { value }
}
