import NIOCore
import Redis

/// The broker of a deployment with several instances: Redis, through one command connection and one
/// subscriber connection per process; or a Redis Cluster, through one of each per master, with
/// sharded pub/sub and every name of a stream in its stream's slot (``keyLayout``).
public struct RedisStreamBroker: StreamBroker {
    public let client: any RedisClientProtocol
    private let pubSub: PubSub
    public let keyLayout: KeyLayout

    private enum PubSub: Sendable {
        case standalone(RedisSubscriber)
        case cluster(RedisClusterSubscriber)
    }

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
        self.pubSub = .standalone(subscriber)
        self.keyLayout = .reference
    }

    /// A cluster: commands go to the master of their key's slot, messages through shard channels
    /// (`SPUBLISH`/`SSUBSCRIBE`), names are hash-tagged.
    public init(cluster: RedisClusterClient, subscriber: RedisClusterSubscriber) {
        self.client = cluster
        self.pubSub = .cluster(subscriber)
        self.keyLayout = .cluster
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
        switch keyLayout {
        case .reference: return try await client.publish(.string(message), to: channel)
        case .cluster: return try await client.spublish(.string(message), to: channel)
        }
    }

    public func ping() async throws {
        switch pubSub {
        case .standalone: _ = try await client.ping()
        case .cluster: try await (client as? RedisClusterClient)?.pingAnyMaster()
        }
    }

    public func subscribe(to channel: String) async throws -> BrokerSubscription {
        switch pubSub {
        case .standalone(let subscriber):
            let subscription = try await subscriber.subscribe(to: channel)
            return BrokerSubscription(subscription.map(Self.event), onCancel: { subscription.unsubscribe() })
        case .cluster(let subscriber):
            let subscription = try await subscriber.subscribe(to: channel)
            return BrokerSubscription(subscription.map(Self.event), onCancel: { subscription.unsubscribe() })
        }
    }

    @Sendable private static func event(_ event: RedisSubscriptionEvent) -> BrokerEvent {
        switch event {
        case .message(let payload): return .message(String(buffer: payload))
        case .gap: return .gap
        }
    }
}
