import Synchronization

/// A count that tasks raise and a test waits on. ``wait(until:)`` returns as soon as the count
/// reaches its target, resumed by the ``add(_:)`` that gets it there: no polling, no pause. For a
/// count the test's own tasks keep; state held elsewhere is for ``eventually(timeout:sourceLocation:_:)``.
/// A wait that is never satisfied ends with its suite's time limit.
public final class Tally: Sendable {
    private struct State {
        var value = 0
        var waiters: [(target: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    public init() {}

    public var value: Int { state.withLock { $0.value } }

    public func add(_ amount: Int = 1) {
        let reached = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.value += amount
            let value = state.value
            var reached: [CheckedContinuation<Void, Never>] = []
            state.waiters.removeAll { waiter in
                guard waiter.target <= value else { return false }
                reached.append(waiter.continuation)
                return true
            }
            return reached
        }
        reached.forEach { $0.resume() }
    }

    /// Returns once the count is at least `target`.
    public func wait(until target: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let reached = state.withLock { state -> Bool in
                guard state.value < target else { return true }
                state.waiters.append((target, continuation))
                return false
            }
            if reached { continuation.resume() }
        }
    }
}
