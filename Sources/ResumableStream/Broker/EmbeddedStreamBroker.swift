import Synchronization

/// The broker of a single instance without Redis: keys with expiries and pub/sub channels, in memory.
///
/// It behaves as Redis does for what the coordinator uses, including at-most-once delivery: each
/// subscription has a bounded buffer, and a reader that falls further behind loses messages and is
/// told with a ``BrokerEvent/gap``.
public final class EmbeddedStreamBroker: StreamBroker {
    private typealias Continuation = AsyncThrowingStream<BrokerEvent, any Error>.Continuation

    private struct Subscriber {
        var continuation: Continuation
        var owesGap = false
    }

    private struct State {
        var values: [String: (value: String, expiresAt: ContinuousClock.Instant)] = [:]
        var channels: [String: [Int: Subscriber]] = [:]
        var nextSubscriber = 0

        mutating func value(_ key: String, now: ContinuousClock.Instant) -> String? {
            guard let entry = values[key] else { return nil }
            guard entry.expiresAt > now else {
                values[key] = nil
                return nil
            }
            return entry.value
        }
    }

    private let state = Mutex(State())
    private let bufferSize: Int

    /// - Parameter bufferSize: how many messages each subscription may have waiting.
    public init(bufferSize: Int = 1024) {
        self.bufferSize = bufferSize
    }

    public func incrementSentinel(_ key: String, expireInSeconds: Int) async throws -> Int? {
        let now = ContinuousClock.now
        return state.withLock { state -> Int? in
            guard let current = state.value(key, now: now) else {
                state.values[key] = ("1", now + .seconds(expireInSeconds))
                return 1
            }
            guard let count = Int(current) else { return nil }
            state.values[key]?.value = String(count + 1)
            return count + 1
        }
    }

    public func get(_ key: String) async throws -> String? {
        let now = ContinuousClock.now
        return state.withLock { $0.value(key, now: now) }
    }

    public func set(_ key: String, to value: String, expireInSeconds: Int) async throws {
        let expiresAt = ContinuousClock.now + .seconds(expireInSeconds)
        state.withLock { $0.values[key] = (value, expiresAt) }
    }

    public func renewLease(_ key: String, seconds: Int) async throws -> Bool {
        let now = ContinuousClock.now
        return state.withLock { state in
            switch state.value(key, now: now) {
            case WireProtocol.doneValue?:
                return false
            case let value?:
                state.values[key] = (value, now + .seconds(seconds))
            case nil:
                state.values[key] = ("1", now + .seconds(seconds))
            }
            return true
        }
    }

    @discardableResult
    public func publish(_ message: String, to channel: String) async throws -> Int {
        state.withLock { state in
            guard var subscribers = state.channels[channel] else { return 0 }
            for (id, var subscriber) in subscribers {
                var gapQueued = false
                if subscriber.owesGap {
                    guard case .enqueued = subscriber.continuation.yield(.gap) else { continue }
                    subscriber.owesGap = false
                    gapQueued = true
                }
                // A message dropped right after a gap is covered by that gap.
                if case .dropped = subscriber.continuation.yield(.message(message)), !gapQueued {
                    subscriber.owesGap = true
                }
                subscribers[id] = subscriber
            }
            state.channels[channel] = subscribers
            return subscribers.count
        }
    }

    public func subscribe(to channel: String) async throws -> BrokerSubscription {
        let (events, continuation) = AsyncThrowingStream.makeStream(
            of: BrokerEvent.self,
            bufferingPolicy: .bufferingOldest(bufferSize)
        )
        let id = state.withLock { state in
            state.nextSubscriber += 1
            state.channels[channel, default: [:]][state.nextSubscriber] = Subscriber(continuation: continuation)
            return state.nextSubscriber
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { state in
                state.channels[channel]?[id] = nil
                if state.channels[channel]?.isEmpty == true {
                    state.channels[channel] = nil
                }
            }
        }
        return BrokerSubscription(events, onCancel: { continuation.finish() })
    }

    /// In memory, it is always there.
    public func ping() async throws {}
}
