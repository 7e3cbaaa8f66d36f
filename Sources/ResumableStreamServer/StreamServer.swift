import AsyncHTTPClient
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Prometheus
import Redis
import ResumableStream
import ResumableStreamHTTP
import ServiceLifecycle
import UnixSignals

/// The service: the routes, a broker (Redis when configured, else embedded), metrics and the
/// lifecycle, as one service group that runs until SIGTERM or SIGINT and then drains.
public struct StreamServer: Sendable {
    public let configuration: ServerConfiguration
    public let context: ResumableStreamContext
    public let routes: ResumableStreamRoutes<StreamRequestContext>
    private let group: ServiceGroup

    /// Connects to Redis (when configured) and prepares everything; ``run()`` serves.
    ///
    /// - Parameters:
    ///   - metrics: the registry `/metrics` shows; the executable also bootstraps swift-metrics
    ///     with it, so the HTTP layer's counters appear there too.
    ///   - sources: sources the application adds to `demo` and `proxy`.
    ///   - onServerRunning: called with the bound port once the server listens.
    public init(
        configuration: ServerConfiguration,
        signals: [UnixSignal] = [.sigterm, .sigint],
        metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        sources: StreamSourceRegistry = StreamSourceRegistry(),
        logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        var logger = logger
        logger.logLevel = configuration.logLevel
        self.configuration = configuration
        // Checked before anything connects, so that a setting that stops the start leaves nothing open.
        let access = try await configuration.streamAccess()
        let crossOrigin = try configuration.crossOriginPolicy()

        var services: [any Service] = []
        let broker: any StreamBroker
        if let url = configuration.redisURL {
            var seeds = try ClusterSeeds(url: url)
            var redis = seeds.configuration
            if configuration.redisMode == .standalone, seeds.nodes.count > 1 {
                throw RedisConfigurationError(message: "several Redis URLs are cluster seeds: they need the cluster mode")
            }
            if redis.tls != nil {
                redis.tls = RedisTLS(
                    caFile: configuration.redisTLSCAFile,
                    certificateFile: configuration.redisTLSCertificateFile,
                    keyFile: configuration.redisTLSKeyFile
                )
            }
            redis.clientName = redis.clientName ?? "resumable-stream"
            redis.commandTimeout = TimeAmount(configuration.brokerTimeout)
            // Redis that comes back is found within half a second: a live stream is joinable
            // again within two. Attempts against a Redis that is down cost a refused connection.
            redis.reconnectMaximumDelay = .milliseconds(500)
            switch configuration.redisMode {
            case .standalone:
                let client = try await RedisClient.connect(configuration: redis, logger: logger)
                let subscriber: RedisSubscriber
                do {
                    subscriber = try await RedisSubscriber.connect(configuration: redis, logger: logger)
                } catch {
                    await client.close()
                    throw error
                }
                // A cluster node serves a third of the keys and answers MOVED for the rest: in the
                // standalone mode that is an error for every other stream, so it is one at start.
                if let info = try? await client.send("INFO", "cluster").string, info.contains("cluster_enabled:1") {
                    await subscriber.close()
                    await client.close()
                    throw RedisConfigurationError(message: "\(redis) is a Redis Cluster node: run with --redis-mode cluster (REDIS_MODE=cluster)")
                }
                broker = RedisStreamBroker(client: client, subscriber: subscriber)
                services.append(RedisConnectionsService(close: {
                    await subscriber.close()
                    await client.close()
                }))
            case .cluster:
                guard !configuration.keyPrefix.contains(where: { $0 == "{" || $0 == "}" }) else {
                    throw RedisConfigurationError(message: "in the cluster mode the key prefix cannot hold '{' or '}': the stream id is the hash tag")
                }
                seeds.configuration = redis
                let cluster = try await RedisClusterClient.connect(seeds: seeds, logger: logger)
                let subscriber = RedisClusterSubscriber(cluster: cluster, logger: logger)
                broker = RedisStreamBroker(cluster: cluster, subscriber: subscriber)
                services.append(RedisConnectionsService(close: {
                    await subscriber.close()
                    await cluster.close()
                }))
            }
        } else {
            broker = EmbeddedStreamBroker()
        }

        var options = ResumableStreamOptions()
        options.keyPrefix = configuration.keyPrefix
        options.acknowledgementTimeout = configuration.acknowledgementTimeout
        options.replayGrace = configuration.replayGrace
        options.leaseSeconds = configuration.leaseSeconds
        options.doneExpirySeconds = configuration.doneExpirySeconds
        options.durability = configuration.durability
        options.retentionSeconds = configuration.retentionSeconds
        options.ingestReattachSeconds = configuration.ingestReattachSeconds
        options.streamBufferLimit = configuration.streamBufferLimit
        options.processBufferLimit = configuration.processBufferLimit
        options.logger = logger
        let context = ResumableStreamContext(broker: broker, options: options)
        self.context = context
        // Owns every producer and mirror; it stops after the services that use it.
        services.append(context)

        let httpClient = HTTPClient(
            eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton),
            configuration: HTTPClient.Configuration(timeout: .init(connect: .seconds(10), read: .seconds(300)))
        )
        var registry = sources
        ProxySource(configuration: .init(allowedOrigins: configuration.proxyAllowedOrigins), httpClient: httpClient)
            .register(in: &registry)

        var routesConfiguration = ResumableStreamRoutes<StreamRequestContext>.Configuration()
        routesConfiguration.maxStreams = configuration.maxStreams
        routesConfiguration.maxReaders = configuration.maxReaders
        routesConfiguration.maxRequestBodySize = configuration.maxRequestBodySize
        routesConfiguration.heartbeatInterval = configuration.heartbeatInterval
        routesConfiguration.retryMilliseconds = configuration.retryMilliseconds
        routesConfiguration.access = access
        let routes = ResumableStreamRoutes<StreamRequestContext>(context: context, sources: registry, configuration: routesConfiguration)
        self.routes = routes

        // HEAD of every GET-only path (the health checks, the assets) is its GET without the body;
        // the stream routes answer HEAD themselves.
        let router = Router(context: StreamRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: MetricsMiddleware())
        // Before the JSON errors, whose responses it adds its headers to.
        if let policy = crossOrigin {
            router.add(middleware: CrossOriginMiddleware(policy: policy))
        }
        router.add(middleware: JSONErrorMiddleware())
        routes.addRoutes(to: router)
        routes.addHealthRoutes(to: router)
        let exporter = MetricsExporter(registry: metrics, context: context)
        router.get("metrics") { _, _ in exporter.response() }
        router.refuseOtherMethods("metrics", allowing: [.get])
        WebAssets().addRoutes(to: router)

        let application = Application(
            router: router,
            server: .resumableStream(headerTimeout: configuration.headerTimeout, idleTimeout: configuration.idleTimeout, logger: logger),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "resumable-stream",
                backlog: configuration.backlog
            ),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger
        )
        services.append(HTTPClientService(client: httpClient))
        if let interval = configuration.freedMemoryInterval {
            services.append(FreedMemoryService(interval: interval, threshold: 4 * 1024 * 1024))
        }
        // Shut down in reverse order: first the drain and the shutdown delay, then the HTTP server
        // (which closes its listener and waits for the responses in progress), then the proxy's
        // client and the broker's connections.
        services.append(application)
        services.append(StreamDrainService(context: context, drainTimeout: configuration.drainTimeout, shutdownDelay: configuration.shutdownDelay))
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            gracefulShutdownSignals: signals,
            cancellationSignals: [],
            logger: logger
        )
        // A client that stopped reading would hold the server's shutdown forever: after the drain
        // (or the delay, when longer) and a margin, what still runs is cancelled.
        groupConfiguration.maximumGracefulShutdownDuration = max(configuration.drainTimeout, configuration.shutdownDelay) + Duration.seconds(10)
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        self.group = ServiceGroup(configuration: groupConfiguration)
    }

    /// Serves until SIGTERM or SIGINT (or ``shutdown()``), then drains: new streams are refused
    /// and `/readyz` says `503` at once, running producers get the drain timeout, their readers end,
    /// and once the drain and the shutdown delay are both over, the server and the broker's
    /// connections close.
    public func run() async throws {
        try await group.run()
    }

    /// What SIGTERM does.
    public func shutdown() async {
        await group.triggerGracefulShutdown()
    }
}

/// Shuts the HTTP client of the proxy source down with the rest.
struct HTTPClientService: Service {
    let client: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
