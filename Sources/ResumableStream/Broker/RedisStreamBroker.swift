import NIOCore
import Redis

/// The broker of a deployment with several instances: Redis, through one command connection and one
/// subscriber connection per process.
public struct RedisStreamBroker: StreamBroker {
    public let client: RedisClient
    public let subscriber: RedisSubscriber

    /// INCR, and an expiry for a sentinel that this call created, in one atomic step: the reference's
    /// INCR leaves a sentinel that never expires when its producer dies.
    private static let incrementScript = RedisScript("""
        local count = redis.call('INCR', KEYS[1])
        if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
        return count
        """)

    /// The lease's renewal, which also re-creates a sentinel that Redis lost, in one atomic step;
    /// a `DONE` sentinel is left as it is.
    private static let renewScript = RedisScript("""
        local value = redis.call('GET', KEYS[1])
        if value == 'DONE' then return 0 end
        if value then
            redis.call('EXPIRE', KEYS[1], ARGV[1])
        else
            redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
        end
        return 1
        """)

    public init(client: RedisClient, subscriber: RedisSubscriber) {
        self.client = client
        self.subscriber = subscriber
    }

    public func incrementSentinel(_ key: String, expireInSeconds: Int) async throws -> Int? {
        do {
            return try await client.run(Self.incrementScript, keys: [key], arguments: [.integer(expireInSeconds)]).integer
        } catch let error as RedisServerError where error.message.contains(WireProtocol.notAnIntegerError) {
            return nil
        }
    }

    public func get(_ key: String) async throws -> String? {
        try await client.getString(key)
    }

    public func set(_ key: String, to value: String, expireInSeconds: Int) async throws {
        try await client.set(key, to: .string(value), expireInSeconds: expireInSeconds)
    }

    public func renewLease(_ key: String, seconds: Int) async throws -> Bool {
        try await client.run(Self.renewScript, keys: [key], arguments: [.integer(seconds)]).integer == 1
    }

    @discardableResult
    public func publish(_ message: String, to channel: String) async throws -> Int {
        try await client.publish(.string(message), to: channel)
    }

    public func ping() async throws {
        _ = try await client.ping()
    }

    public func subscribe(to channel: String) async throws -> BrokerSubscription {
        let subscription = try await subscriber.subscribe(to: channel)
        let events = subscription.map { @Sendable event -> BrokerEvent in
            switch event {
            case .message(let payload): return .message(String(buffer: payload))
            case .gap: return .gap
            }
        }
        return BrokerSubscription(events, onCancel: { subscription.unsubscribe() })
    }
}
