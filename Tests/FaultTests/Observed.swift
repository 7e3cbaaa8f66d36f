import Synchronization
import TestSupport

/// A value that one task updates and others wait on: ``wait(timeout:until:)`` returns as soon as an
/// ``update(_:)`` makes the condition hold, resumed by that update (no polling), or `nil` at the
/// timeout. For what the test's own readers see (a stream's text so far, its end).
final class Observed<Value: Sendable>: Sendable {
    private struct Waiter {
        let condition: @Sendable (Value) -> Bool
        let continuation: CheckedContinuation<Value?, Never>
    }

    private struct State {
        var value: Value
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
        /// Waiters cancelled before they were registered.
        var cancelled: Set<Int> = []
    }

    private let state: Mutex<State>

    init(_ value: Value) {
        state = Mutex(State(value: value))
    }

    var value: Value { state.withLock { $0.value } }

    func update(_ change: (inout Value) -> Void) {
        let resumed = state.withLock { state -> [(CheckedContinuation<Value?, Never>, Value)] in
            change(&state.value)
            var resumed: [(CheckedContinuation<Value?, Never>, Value)] = []
            for (id, waiter) in state.waiters where waiter.condition(state.value) {
                resumed.append((waiter.continuation, state.value))
                state.waiters[id] = nil
            }
            return resumed
        }
        for (continuation, value) in resumed { continuation.resume(returning: value) }
    }

    /// The value once `condition` holds for it; `nil` if it does not within `timeout`.
    func wait(timeout: Duration, until condition: @escaping @Sendable (Value) -> Bool) async -> Value? {
        (try? await within(timeout) { await self.wait(until: condition) }) ?? nil
    }

    /// Waits until `condition` holds, or until the task is cancelled (then `nil`).
    private func wait(until condition: @escaping @Sendable (Value) -> Bool) async -> Value? {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
                let now: Value?? = state.withLock { state in
                    if state.cancelled.remove(id) != nil { return .some(nil) }
                    if condition(state.value) { return .some(state.value) }
                    state.waiters[id] = Waiter(condition: condition, continuation: continuation)
                    return .none
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Value?, Never>? in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter.continuation }
                state.cancelled.insert(id)
                return nil
            }
            continuation?.resume(returning: nil)
        }
    }
}
