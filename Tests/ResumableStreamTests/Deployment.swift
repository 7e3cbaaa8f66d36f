import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Redis
import ResumableStream
import TestSupport
import Testing

/// Which broker a test runs on: the same tests run on both.
enum BrokerKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case embedded
    case redis

    var testDescription: String { rawValue }
}

/// Several contexts that share one broker and key prefix: they stand for server instances. On Redis
/// each has its own connections; on the embedded broker they share the in-process one.
final class Deployment: Sendable {
    let contexts: [ResumableStreamContext]
    /// The broker as the contexts see it, for tests that play a reference instance through it.
    let broker: any StreamBroker
    let prefix: String
    let redis: RedisClient?
    private let connections: [(RedisClient, RedisSubscriber)]

    private init(
        contexts: [ResumableStreamContext],
        broker: any StreamBroker,
        prefix: String,
        redis: RedisClient?,
        connections: [(RedisClient, RedisSubscriber)]
    ) {
        self.contexts = contexts
        self.broker = broker
        self.prefix = prefix
        self.redis = redis
        self.connections = connections
    }

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
            return Deployment(contexts: contexts, broker: broker, prefix: settings.keyPrefix, redis: nil, connections: [])
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
                connections: connections + [(admin, adminSubscriber)]
            )
        }
    }

    static func redisConfiguration(url: String? = nil) throws -> RedisConfiguration {
        guard let url = url ?? ProcessInfo.processInfo.environment["REDIS_URL"] else {
            throw MissingRedis()
        }
        return try RedisConfiguration(url: url)
    }

    struct MissingRedis: Error, CustomStringConvertible {
        var description: String { "REDIS_URL is not set: run the tests with scripts/test, which starts a redis-server" }
    }

    /// The client name of context `index`'s connections.
    func clientName(of index: Int) -> String {
        "\(prefix)-\(index)"
    }

    /// Cuts context `index` off from Redis, as if its process had died.
    func kill(context index: Int) async {
        guard index < connections.count else { return }
        await connections[index].1.close()
        await connections[index].0.close()
    }

    func close() async {
        for (client, subscriber) in connections {
            await subscriber.close()
            await client.close()
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
