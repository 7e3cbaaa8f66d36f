import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// A value that arrives once, from any thread, and one task that waits for it with a timeout.
final class Gate<T>: @unchecked Sendable {
    private let lock = NIOLock()
    private var value: T?
    private var continuation: CheckedContinuation<T?, Never>?

    init() {}

    func open(_ value: T) {
        let waiting: CheckedContinuation<T?, Never>? = lock.withLock {
            guard self.value == nil else { return nil }
            self.value = value
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(returning: value)
    }

    var isOpen: Bool { lock.withLock { value != nil } }

    /// The value, or nil when it has not come within the timeout.
    func wait(timeout: TimeAmount) async -> T? {
        await withCheckedContinuation { (c: CheckedContinuation<T?, Never>) in
            let ready: T? = lock.withLock {
                if let value { return value }
                continuation = c
                return nil
            }
            if let ready {
                c.resume(returning: ready)
                return
            }
            group.next().scheduleTask(in: timeout) {
                let expired: CheckedContinuation<T?, Never>? = self.lock.withLock {
                    defer { self.continuation = nil }
                    return self.continuation
                }
                expired?.resume(returning: nil)
            }
        }
    }
}

/// Counts down from a number; its gate opens at zero.
final class Latch: @unchecked Sendable {
    private let lock = NIOLock()
    private var remaining: Int
    let gate = Gate<Bool>()

    init(_ count: Int) {
        remaining = count
        if count <= 0 { gate.open(true) }
    }

    func countDown() {
        let zero: Bool = lock.withLock {
            remaining -= 1
            return remaining == 0
        }
        if zero { gate.open(true) }
    }

    func wait(timeout: TimeAmount) async -> Bool { await gate.wait(timeout: timeout) ?? false }
}

@inline(__always)
func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

/// Blocks a thread of its own (not the pool's) until a line comes on standard input.
func waitForLine() async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
        Thread { _ = readLine(); c.resume() }.start()
    }
}

/// One JSON line on standard output, flushed.
func emit(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: jsonSafe(object), options: [.sortedKeys])
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let rank = Int((p / 100 * Double(sorted.count - 1)).rounded())
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

/// Errors by kind, with the first few messages.
final class Errors: @unchecked Sendable {
    private let lock = NIOLock()
    private var counts: [String: Int] = [:]
    private var samples: [String] = []

    func add(_ kind: String, _ message: String) {
        lock.withLock {
            counts[kind, default: 0] += 1
            if samples.count < 5 { samples.append(message) }
        }
    }

    var total: Int { lock.withLock { counts.values.reduce(0, +) } }
    func count(_ kind: String) -> Int { lock.withLock { counts[kind] ?? 0 } }

    var json: [String: Any] {
        lock.withLock { ["errors": counts.values.reduce(0, +), "error_kinds": counts, "error_samples": samples] }
    }
}

/// JSON has no NaN or infinity: they become null.
func jsonSafe(_ value: Any) -> Any {
    switch value {
    case let number as Double: return number.isFinite ? number : NSNull()
    case let dictionary as [String: Any]: return dictionary.mapValues(jsonSafe)
    case let array as [Any]: return array.map(jsonSafe)
    default: return value
    }
}
