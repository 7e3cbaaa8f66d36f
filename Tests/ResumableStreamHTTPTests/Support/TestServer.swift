import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ResumableStream
import ResumableStreamHTTP
import ResumableStreamServer
import Testing

/// One instance of the service on a real socket (loopback, a free port), in this process.
final class TestServer: Sendable {
    let server: StreamServer
    let port: Int
    private let task: Task<Void, any Error>

    var base: String { "http://127.0.0.1:\(port)" }
    var context: ResumableStreamContext { server.context }
    var routes: ResumableStreamRoutes<StreamRequestContext> { server.routes }

    private init(server: StreamServer, port: Int, task: Task<Void, any Error>) {
        self.server = server
        self.port = port
        self.task = task
    }

    /// - Parameters:
    ///   - redis: whether to use the test command's redis-server (else the embedded broker).
    ///   - prefix: the key prefix; instances that share a stream share it.
    static func start(
        redis: Bool = true,
        prefix: String,
        sources: StreamSourceRegistry = StreamSourceRegistry(),
        _ configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.keyPrefix = prefix
        configuration.logLevel = .warning
        // Tests stop their servers at once; the one that tests the delay sets it.
        configuration.shutdownDelay = .zero
        // The suites run many servers at once on a few cores; no test here is about the broker's
        // bound, and a Redis reply late by seconds under that load is no failure of the service.
        configuration.brokerTimeout = .seconds(10)
        // Likewise a producer's first answer to a follower on another instance: under that load
        // (a browser and a fuzzer run beside these suites) it has come later than the default 1 s,
        // and the follower then took the producer for gone.
        configuration.acknowledgementTimeout = .seconds(10)
        if redis {
            guard let url = ProcessInfo.processInfo.environment["REDIS_URL"] else { throw MissingRedis() }
            configuration.redisURL = url
        }
        configure(&configuration)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let server = try await StreamServer(
            configuration: configuration,
            signals: [],
            sources: sources,
            logger: Logger(label: "test-server")
        ) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let task = Task { try await server.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            task.cancel()
            throw ServerDidNotStart()
        }
        return TestServer(server: server, port: port, task: task)
    }

    /// What SIGTERM does; returns when the server has stopped.
    func stop() async {
        await server.shutdown()
        await stopped()
    }

    /// Returns when the server has stopped.
    func stopped() async {
        _ = await task.result
    }

    struct MissingRedis: Error, CustomStringConvertible {
        var description: String { "REDIS_URL is not set: run the tests with scripts/test, which starts a redis-server" }
    }

    struct ServerDidNotStart: Error {}
}

/// Runs `body` with servers that are stopped afterwards, whatever happens.
func withServers<Result>(
    _ count: Int,
    redis: Bool = true,
    sources: StreamSourceRegistry = StreamSourceRegistry(),
    _ configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: ([TestServer]) async throws -> Result
) async throws -> Result {
    let prefix = "http-test-\(UUID().uuidString.prefix(8))"
    var servers: [TestServer] = []
    do {
        for _ in 0..<count {
            servers.append(try await TestServer.start(redis: redis, prefix: prefix, sources: sources, configure))
        }
        let result = try await body(servers)
        for server in servers { await server.stop() }
        return result
    } catch {
        for server in servers { await server.stop() }
        throw error
    }
}

/// The HTTP client the tests use; it allows as many connections as a test opens.
let testHTTPClient: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 4096)
    configuration.timeout = .init(connect: .seconds(10), read: .seconds(60))
    return HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton), configuration: configuration)
}()
