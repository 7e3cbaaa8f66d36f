import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Redis
@testable import ResumableStream
import TestSupport
import Testing

/// Which broker a test runs on: the same tests run on both.
enum BrokerKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case embedded
    case redis
    /// A three-master Redis Cluster (the one the test command starts, `REDIS_CLUSTER_URL`).
    case cluster

    var testDescription: String { rawValue }
}

/// Several contexts that share one broker and key prefix: they stand for server instances. On Redis
/// each has its own connections; on the embedded broker they share the in-process one.
final class Deployment: Sendable {
    let contexts: [ResumableStreamContext]
    /// The broker as the contexts see it, for tests that play a reference instance through it.
    let broker: any StreamBroker
    let prefix: String
    /// A client of the deployment's standalone Redis.
    let redis: RedisClient?
    /// A client of the deployment's cluster.
    let cluster: RedisClusterClient?
    /// Closes each context's connections (the last entry: the admin's), as if its process died.
    private let connections: [@Sendable () async -> Void]

    private init(
        contexts: [ResumableStreamContext],
        broker: any StreamBroker,
        prefix: String,
        redis: RedisClient? = nil,
        cluster: RedisClusterClient? = nil,
        connections: [@Sendable () async -> Void]
    ) {
        self.contexts = contexts
        self.broker = broker
        self.prefix = prefix
        self.redis = redis
        self.cluster = cluster
        self.connections = connections
    }

    /// The deployment's names for a stream, as its contexts make them.
    var wire: WireProtocol { WireProtocol(prefix: prefix, layout: broker.keyLayout) }

    static func make(
        _ kind: BrokerKind,
        contexts count: Int = 2,
        redisURL: String? = nil,
        redis configure: (inout RedisConfiguration) -> Void = { _ in },
        options: (inout ResumableStreamOptions) -> Void = { _ in }
    ) async throws -> Deployment {
        // A generous acknowledgement timeout: the suite runs many tests at once on two cores, and
        // only the tests of the timeout itself (FollowerHandshakeTests) depend on its length.
        var settings = ResumableStreamOptions(
            keyPrefix: "test-\(UUID().uuidString.prefix(8))",
            acknowledgementTimeout: .seconds(10),
            replayGrace: .zero
        )
        options(&settings)
        switch kind {
        case .embedded:
            let broker = EmbeddedStreamBroker()
            let contexts = (0..<count).map { _ in ResumableStreamContext(broker: broker, options: settings) }
            return Deployment(contexts: contexts, broker: broker, prefix: settings.keyPrefix, connections: [])
        case .redis:
            var configuration = try redisConfiguration(url: redisURL)
            configure(&configuration)
            var connections: [(RedisClient, RedisSubscriber)] = []
            for index in 0..<count {
                // Named, so that a test can cut one instance's connections with CLIENT KILL.
                configuration.clientName = "\(settings.keyPrefix)-\(index)"
                connections.append((
                    try await RedisClient.connect(configuration: configuration),
                    try await RedisSubscriber.connect(configuration: configuration)
                ))
            }
            configuration.clientName = nil
            let contexts = connections.map { client, subscriber in
                ResumableStreamContext(broker: RedisStreamBroker(client: client, subscriber: subscriber), options: settings)
            }
            let admin = try await RedisClient.connect(configuration: configuration)
            let adminSubscriber = try await RedisSubscriber.connect(configuration: configuration)
            return Deployment(
                contexts: contexts,
                broker: RedisStreamBroker(client: admin, subscriber: adminSubscriber),
                prefix: settings.keyPrefix,
                redis: admin,
                connections: (connections + [(admin, adminSubscriber)]).map { client, subscriber in
                    { @Sendable in
                        await subscriber.close()
                        await client.close()
                    }
                }
            )
        case .cluster:
            var seeds = try clusterSeeds(url: redisURL)
            configure(&seeds.configuration)
            var brokers: [RedisStreamBroker] = []
            var connections: [@Sendable () async -> Void] = []
            for _ in 0...count {
                let client = try await RedisClusterClient.connect(seeds: seeds)
                let subscriber = RedisClusterSubscriber(cluster: client)
                brokers.append(RedisStreamBroker(cluster: client, subscriber: subscriber))
                connections.append {
                    await subscriber.close()
                    await client.close()
                }
            }
            let contexts = brokers.dropLast().map { ResumableStreamContext(broker: $0, options: settings) }
            guard let admin = brokers.last, let adminClient = admin.client as? RedisClusterClient else {
                throw MissingRedis()
            }
            return Deployment(contexts: contexts, broker: admin, prefix: settings.keyPrefix, cluster: adminClient, connections: connections)
        }
    }

    static func clusterSeeds(url: String? = nil) throws -> ClusterSeeds {
        guard let url = url ?? ProcessInfo.processInfo.environment["REDIS_CLUSTER_URL"] else {
            throw MissingRedis()
        }
        return try ClusterSeeds(url: url)
    }

    static func redisConfiguration(url: String? = nil) throws -> RedisConfiguration {
        guard let url = url ?? ProcessInfo.processInfo.environment["REDIS_URL"] else {
            throw MissingRedis()
        }
        return try RedisConfiguration(url: url)
    }

    struct MissingRedis: Error, CustomStringConvertible {
        var description: String {
            "REDIS_URL or REDIS_CLUSTER_URL is not set: run the tests with scripts/test, which starts a redis-server and a cluster"
        }
    }

    /// The client name of context `index`'s connections.
    func clientName(of index: Int) -> String {
        "\(prefix)-\(index)"
    }

    /// Cuts context `index` off from Redis, as if its process had died.
    func kill(context index: Int) async {
        guard index < connections.count else { return }
        await connections[index]()
    }

    func close() async {
        for close in connections {
            await close()
        }
    }

    /// Runs `body` with a deployment whose contexts run (each owns its producers and mirrors, as
    /// a server's service group runs it), then stops them and closes the deployment, whatever
    /// happens.
    static func with<Result>(
        _ kind: BrokerKind,
        contexts count: Int = 2,
        redisURL: String? = nil,
        redis configure: (inout RedisConfiguration) -> Void = { _ in },
        options: (inout ResumableStreamOptions) -> Void = { _ in },
        _ body: (Deployment) async throws -> Result
    ) async throws -> Result {
        try await using(make(kind, contexts: count, redisURL: redisURL, redis: configure, options: options), close: { await $0.close() }) { deployment in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for context in deployment.contexts {
                    group.addTask { await context.run() }
                }
                // A body that throws cancels the contexts with the group.
                let result = try await body(deployment)
                group.cancelAll()
                return result
            }
        }
    }
}

/// A source the test feeds by hand, to see chunks arrive before the source ends.
final class ManualSource: Sendable {
    let stream: AsyncStream<String>
    let continuation: AsyncStream<String>.Continuation
    private let calls = NIOLockedValueBox(0)

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: String.self)
    }

    /// The source closure to hand to the context; counts how often it is called.
    var make: @Sendable () -> AsyncStream<String> {
        { [self] in
            calls.withLockedValue { $0 += 1 }
            return stream
        }
    }

    var callCount: Int { calls.withLockedValue { $0 } }

    func send(_ chunks: String...) {
        for chunk in chunks { continuation.yield(chunk) }
    }

    func finish() {
        continuation.finish()
    }
}

struct UnexpectedResult: Error, CustomStringConvertible {
    let description: String
}

extension ResumableStreamResult {
    /// The reader, or an error that says what came instead.
    func reader() throws -> ResumableStreamReader {
        switch self {
        case .stream(let reader): return reader
        case .notFound: throw UnexpectedResult(description: "expected a stream, got notFound")
        case .finished: throw UnexpectedResult(description: "expected a stream, got finished")
        }
    }

    var isFinished: Bool {
        if case .finished = self { return true }
        return false
    }

    var isNotFound: Bool {
        if case .notFound = self { return true }
        return false
    }
}

extension ResumableStreamReader {
    /// Everything the reader gets, joined.
    func text() async throws -> String {
        var text = ""
        for try await chunk in self { text += chunk.text }
        return text
    }
}
