/// What the coordinator needs from Redis: a few commands on sentinel keys, and pub/sub.
///
/// ``RedisStreamBroker`` speaks to Redis; ``EmbeddedStreamBroker`` does the same in memory for a
/// single instance. The coordinator runs unchanged on either.
public protocol StreamBroker: Sendable {
    /// INCR the sentinel and, when this call created it, give it an expiry; `nil` when the sentinel
    /// holds a value that is not an integer (`DONE`).
    func incrementSentinel(_ key: String, expireInSeconds: Int) async throws -> Int?
    func get(_ key: String) async throws -> String?
    func set(_ key: String, to value: String, expireInSeconds: Int) async throws
    /// Renews a live sentinel's lease: its expiry becomes `seconds`, and a sentinel that has gone
    /// (Redis restarted empty, or the lease lapsed while Redis was unreachable) is created again
    /// with `1`. Returns `false`, changing nothing, when the sentinel holds `DONE`.
    func renewLease(_ key: String, seconds: Int) async throws -> Bool
    /// Publishes `message` and returns how many subscribers (connections, or in-process
    /// subscriptions) received it.
    @discardableResult
    func publish(_ message: String, to channel: String) async throws -> Int
    /// Returns once the subscription is in place.
    func subscribe(to channel: String) async throws -> BrokerSubscription
    /// Throws when the broker cannot be reached (for readiness checks).
    func ping() async throws
    /// How the names of a stream are made; instances that share streams must agree on it.
    var keyLayout: KeyLayout { get }
}

extension StreamBroker {
    public var keyLayout: KeyLayout { .reference }
}

/// How a stream's Redis keys and channels are named (see ``WireProtocol``).
public enum KeyLayout: Sendable, Equatable {
    /// The reference's names (`P:rs:sentinel:<id>`, ...), which its instances read and write.
    case reference
    /// Every name of a stream carries the stream id as a Redis Cluster hash tag
    /// (`P:rs:{<id>}:sentinel`, ...), so that a stream's keys and shard channels share one slot,
    /// and so one node. Reference instances do not know these names.
    case cluster
}

/// What a subscription delivers.
public enum BrokerEvent: Sendable, Equatable {
    case message(String)
    /// Messages may have been lost here (a reconnection, or a reader that fell too far behind).
    case gap
}

/// The messages of one channel for one reader, in order. Ends when ``cancel()`` is called.
public struct BrokerSubscription: AsyncSequence, Sendable {
    public typealias Element = BrokerEvent

    private let makeIterator: @Sendable () -> AsyncIterator
    private let onCancel: @Sendable () -> Void

    public init<Events: AsyncSequence & Sendable>(
        _ events: Events,
        onCancel: @escaping @Sendable () -> Void
    ) where Events.Element == BrokerEvent, Events.Failure == any Error {
        self.makeIterator = { AsyncIterator(base: events.makeAsyncIterator()) }
        self.onCancel = onCancel
    }

    /// Ends the subscription and releases it.
    public func cancel() {
        onCancel()
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: any AsyncIteratorProtocol<BrokerEvent, any Error>

        public mutating func next() async throws -> BrokerEvent? {
            try await base.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        makeIterator()
    }
}
