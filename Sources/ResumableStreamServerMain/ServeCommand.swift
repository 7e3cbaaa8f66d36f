import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ResumableStream
import ResumableStreamServer

/// `resumable-stream-server`: every flag has an environment variable, which the flag overrides.
@main
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resumable-stream-server",
        abstract: "Serves resumable Server-Sent Event streams, with Redis between instances or alone in memory."
    )

    @Option(help: "Address to listen on (HOST).")
    var host = Self.environment("HOST") ?? "127.0.0.1"

    @Option(help: "Port to listen on (PORT).")
    var port = Self.integer("PORT") ?? 8080

    // No default from the environment, as for --jwt-secret: --help prints defaults, and the URL
    // carries Redis's password.
    @Option(name: .customLong("redis-url"), help: "redis://[[user]:password@]host[:port][/db], or rediss:// for TLS (REDIS_URL). Without it the embedded broker runs, for one instance.")
    var redisURLFlag: String?

    var redisURL: String { redisURLFlag ?? Self.environment("REDIS_URL") ?? "" }

    @Option(name: .customLong("redis-tls-ca-file"), help: "With rediss://: PEM file of the CAs that Redis's certificate must chain to (REDIS_TLS_CA_FILE); the system's trust store without it.")
    var redisTLSCAFile = Self.environment("REDIS_TLS_CA_FILE") ?? ""

    @Option(name: .customLong("redis-tls-cert-file"), help: "With rediss://: PEM certificate of this client, for a Redis that asks for one (REDIS_TLS_CERT_FILE).")
    var redisTLSCertFile = Self.environment("REDIS_TLS_CERT_FILE") ?? ""

    @Option(name: .customLong("redis-tls-key-file"), help: "With rediss://: PEM private key of that certificate (REDIS_TLS_KEY_FILE).")
    var redisTLSKeyFile = Self.environment("REDIS_TLS_KEY_FILE") ?? ""

    @Option(help: "standalone, or cluster: --redis-url names one seed node of a Redis Cluster, or several comma-separated (redis://:pw@h1:6379,h2:6379); pub/sub is sharded (REDIS_MODE).")
    var redisMode = Self.environment("REDIS_MODE") ?? "standalone"

    @Option(help: "Prefix of the Redis keys and channels (KEY_PREFIX); instances that share streams share it.")
    var keyPrefix = Self.environment("KEY_PREFIX") ?? "resumable-stream"

    @Option(help: "Milliseconds a resume waits for the producer's answer (ACK_TIMEOUT_MS).")
    var ackTimeoutMs = Self.integer("ACK_TIMEOUT_MS") ?? 1000

    @Option(help: "Seconds a finished stream is still answered (REPLAY_GRACE_SECONDS); 0 as the reference.")
    var replayGraceSeconds = Self.integer("REPLAY_GRACE_SECONDS") ?? 30

    @Option(help: "Bytes one stream may buffer (STREAM_BUFFER_LIMIT).")
    var streamBufferLimit = Self.integer("STREAM_BUFFER_LIMIT") ?? 64 * 1024 * 1024

    @Option(help: "Bytes all streams of the process may buffer (PROCESS_BUFFER_LIMIT).")
    var processBufferLimit = Self.integer("PROCESS_BUFFER_LIMIT") ?? 512 * 1024 * 1024

    @Option(help: "Streams whose source runs at once (MAX_STREAMS); finished streams in their replay grace do not count.")
    var maxStreams = Self.integer("MAX_STREAMS") ?? 1_000

    @Option(help: "Stream responses at once (MAX_READERS).")
    var maxReaders = Self.integer("MAX_READERS") ?? 10_000

    @Option(help: "Bytes of a create request's JSON body (MAX_BODY_SIZE).")
    var maxBodySize = Self.integer("MAX_BODY_SIZE") ?? 64 * 1024

    @Option(help: "Seconds of silence before a heartbeat comment (HEARTBEAT_SECONDS).")
    var heartbeatSeconds = Self.integer("HEARTBEAT_SECONDS") ?? 15

    @Option(help: "Seconds running streams get to finish at SIGTERM (DRAIN_SECONDS).")
    var drainSeconds = Self.integer("DRAIN_SECONDS") ?? 30

    @Option(help: "Seconds the instance still answers at SIGTERM, /readyz saying 503, before it closes its listener (SHUTDOWN_DELAY_SECONDS).")
    var shutdownDelaySeconds = Self.integer("SHUTDOWN_DELAY_SECONDS") ?? 5

    @Option(help: "Seconds a connection may take to send a request head (HEADER_TIMEOUT_SECONDS).")
    var headerTimeoutSeconds = Self.integer("HEADER_TIMEOUT_SECONDS") ?? 10

    @Option(help: "Seconds a kept-alive connection may wait between requests (IDLE_TIMEOUT_SECONDS).")
    var idleTimeoutSeconds = Self.integer("IDLE_TIMEOUT_SECONDS") ?? 60

    @Option(help: "Milliseconds any Redis call may take (BROKER_TIMEOUT_MS).")
    var brokerTimeoutMs = Self.integer("BROKER_TIMEOUT_MS") ?? 2000

    @Option(help: "Seconds of a live stream's lease, which its producer renews; a dead producer's id is free after it (LEASE_SECONDS).")
    var leaseSeconds = Self.integer("LEASE_SECONDS") ?? 15

    @Option(help: "Seconds a finished stream stays marked done (DONE_EXPIRY_SECONDS).")
    var doneExpirySeconds = Self.integer("DONE_EXPIRY_SECONDS") ?? 86_400

    @Option(help: "memory, or redis: every stream also kept in Redis and readable from any instance, whether or not its producer lives (DURABILITY). redis needs --redis-url.")
    var durability = Self.environment("DURABILITY") ?? "memory"

    @Option(help: "Seconds a durable stream stays readable after its end (RETENTION_SECONDS).")
    var retentionSeconds = Self.integer("RETENTION_SECONDS") ?? 3600

    @Option(help: "Seconds a durable ingest whose producer went away waits for a POST with Stream-Offset to continue it (INGEST_REATTACH_SECONDS).")
    var ingestReattachSeconds = Self.integer("INGEST_REATTACH_SECONDS") ?? 30

    @Option(help: "Comma-separated origins the proxy source may reach, or * (PROXY_ALLOWED_ORIGINS); none by default.")
    var proxyAllowedOrigins = Self.environment("PROXY_ALLOWED_ORIGINS") ?? ""

    // No default from the environment here, unlike most flags: --help prints defaults.
    @Option(name: .customLong("jwt-secret"), help: "HS256 secret of the tokens that creating, ingesting and cancelling need, 32 bytes or more (JWT_SECRET). Without a key, anyone who reaches the service may write any stream.")
    var jwtSecretFlag: String?

    var jwtSecret: String { jwtSecretFlag ?? Self.environment("JWT_SECRET") ?? "" }

    @Option(name: .customLong("jwt-public-key-file"), help: "PEM public key the tokens are verified with instead: RSA for RS256, P-256 EC for ES256 (JWT_PUBLIC_KEY_FILE).")
    var jwtPublicKeyFile = Self.environment("JWT_PUBLIC_KEY_FILE") ?? ""

    @Flag(inversion: .prefixedNo, help: "Reads (GET, HEAD, /status) need a token too, in the Authorization header or the access_token query parameter; needs a key (REQUIRE_READ_TOKEN=true).")
    var requireReadToken = Self.boolean("REQUIRE_READ_TOKEN") ?? false

    @Option(help: "Comma-separated origins whose web pages may call the service (https://app.example.com), or * (CORS_ALLOWED_ORIGINS); no CORS headers without it.")
    var corsAllowedOrigins = Self.environment("CORS_ALLOWED_ORIGINS") ?? ""

    @Option(help: "trace, debug, info, notice, warning, error or critical (LOG_LEVEL).")
    var logLevel = Self.environment("LOG_LEVEL") ?? "info"

    /// The environment variables read as integers: a value that is not one is refused, not ignored.
    static let integerVariables = [
        "PORT", "ACK_TIMEOUT_MS", "REPLAY_GRACE_SECONDS", "STREAM_BUFFER_LIMIT", "PROCESS_BUFFER_LIMIT",
        "MAX_STREAMS", "MAX_READERS", "MAX_BODY_SIZE", "HEARTBEAT_SECONDS", "DRAIN_SECONDS",
        "SHUTDOWN_DELAY_SECONDS", "HEADER_TIMEOUT_SECONDS", "IDLE_TIMEOUT_SECONDS", "BROKER_TIMEOUT_MS",
        "LEASE_SECONDS", "DONE_EXPIRY_SECONDS", "RETENTION_SECONDS", "INGEST_REATTACH_SECONDS",
    ]

    func validate() throws {
        for name in Self.integerVariables {
            if let value = Self.environment(name), Int(value) == nil {
                throw ValidationError("\(name)='\(value)' is not an integer")
            }
        }
        if let value = Self.environment("REQUIRE_READ_TOKEN"), Self.boolean("REQUIRE_READ_TOKEN") == nil {
            throw ValidationError("REQUIRE_READ_TOKEN='\(value)' is not true or false")
        }
        // Keys, origins and what needs them are checked by the server as it starts (StreamAccessConfigurationError).
        guard let durable = ResumableStreamDurability(rawValue: durability) else {
            throw ValidationError("--durability must be memory or redis, not '\(durability)'")
        }
        let tlsFiles = [redisTLSCAFile, redisTLSCertFile, redisTLSKeyFile].filter { !$0.isEmpty }
        if !tlsFiles.isEmpty, !redisURL.hasPrefix("rediss://") {
            throw ValidationError("--redis-tls-* files need a rediss:// URL in --redis-url")
        }
        if redisTLSCertFile.isEmpty != redisTLSKeyFile.isEmpty {
            throw ValidationError("--redis-tls-cert-file and --redis-tls-key-file go together")
        }
        guard let mode = RedisMode(rawValue: redisMode) else {
            throw ValidationError("--redis-mode must be standalone or cluster, not '\(redisMode)'")
        }
        if mode == .cluster, redisURL.isEmpty {
            throw ValidationError("--redis-mode cluster needs the cluster's seed nodes in --redis-url (REDIS_URL)")
        }
        if durable == .redis, redisURL.isEmpty {
            throw ValidationError("--durability redis keeps streams in Redis: it needs --redis-url (REDIS_URL)")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown log level '\(logLevel)'") }
        guard (0...65535).contains(port) else { throw ValidationError("the port must be between 0 and 65535") }
        let positive = [
            ("max-streams", maxStreams), ("max-readers", maxReaders), ("max-body-size", maxBodySize),
            ("heartbeat-seconds", heartbeatSeconds), ("header-timeout-seconds", headerTimeoutSeconds),
            ("idle-timeout-seconds", idleTimeoutSeconds), ("broker-timeout-ms", brokerTimeoutMs),
            ("lease-seconds", leaseSeconds), ("done-expiry-seconds", doneExpirySeconds),
            ("retention-seconds", retentionSeconds), ("ingest-reattach-seconds", ingestReattachSeconds),
        ]
        for (name, value) in positive {
            guard value > 0 else { throw ValidationError("--\(name) must be positive") }
        }
        let nonNegative = [
            ("ack-timeout-ms", ackTimeoutMs), ("replay-grace-seconds", replayGraceSeconds),
            ("drain-seconds", drainSeconds), ("shutdown-delay-seconds", shutdownDelaySeconds),
        ]
        for (name, value) in nonNegative {
            guard value >= 0 else { throw ValidationError("--\(name) must not be negative") }
        }
    }

    func run() async throws {
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.redisURL = redisURL.isEmpty ? nil : redisURL
        configuration.keyPrefix = keyPrefix
        configuration.acknowledgementTimeout = .milliseconds(ackTimeoutMs)
        configuration.replayGrace = .seconds(replayGraceSeconds)
        configuration.streamBufferLimit = streamBufferLimit
        configuration.processBufferLimit = processBufferLimit
        configuration.maxStreams = maxStreams
        configuration.maxReaders = maxReaders
        configuration.maxRequestBodySize = maxBodySize
        configuration.heartbeatInterval = .seconds(heartbeatSeconds)
        configuration.drainTimeout = .seconds(drainSeconds)
        configuration.shutdownDelay = .seconds(shutdownDelaySeconds)
        configuration.headerTimeout = .seconds(headerTimeoutSeconds)
        configuration.idleTimeout = .seconds(idleTimeoutSeconds)
        configuration.brokerTimeout = .milliseconds(brokerTimeoutMs)
        configuration.leaseSeconds = leaseSeconds
        configuration.doneExpirySeconds = doneExpirySeconds
        configuration.durability = ResumableStreamDurability(rawValue: durability) ?? .memory
        configuration.redisTLSCAFile = redisTLSCAFile.isEmpty ? nil : redisTLSCAFile
        configuration.redisTLSCertificateFile = redisTLSCertFile.isEmpty ? nil : redisTLSCertFile
        configuration.redisTLSKeyFile = redisTLSKeyFile.isEmpty ? nil : redisTLSKeyFile
        configuration.redisMode = RedisMode(rawValue: redisMode) ?? .standalone
        configuration.retentionSeconds = retentionSeconds
        configuration.ingestReattachSeconds = ingestReattachSeconds
        configuration.proxyAllowedOrigins = proxyAllowedOrigins.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        configuration.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        configuration.jwtSecret = jwtSecret.isEmpty ? nil : jwtSecret
        configuration.jwtPublicKeyFile = jwtPublicKeyFile.isEmpty ? nil : jwtPublicKeyFile
        configuration.requireReadToken = requireReadToken
        configuration.corsAllowedOrigins = corsAllowedOrigins.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }

        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = {
            var logger = Logger(label: "resumable-stream")
            logger.logLevel = configuration.logLevel
            return logger
        }()
        if let files = OpenFileLimit.raise() {
            logger.log(
                level: files.after < UInt64(maxReaders) + 1_024 ? .warning : .debug,
                "open files: \(files.after) (the soft limit was \(files.before)); --max-readers is \(maxReaders)"
            )
        }
        let broker = configuration.redisURL == nil
            ? "the embedded broker (one instance)"
            : (configuration.redisMode == .cluster ? "a Redis Cluster" : "Redis")
                + (configuration.durability == .redis ? ", streams kept there for \(retentionSeconds) s after their end" : "")
        let server = try await StreamServer(configuration: configuration, metrics: registry, logger: logger) { port in
            logger.info("listening on http://\(host):\(port) with \(broker)")
            logger.info("try: curl -N -X POST http://\(host):\(port)/streams/hello -H 'Content-Type: application/json' -d '{\"source\":\"demo\",\"parameters\":{\"count\":20,\"intervalMs\":200}}'")
        }
        if let algorithm = server.tokenAlgorithm {
            logger.info("creating, ingesting and cancelling need a \(algorithm) token; reading \(requireReadToken ? "does too" : "is public")")
        } else {
            logger.warning("writes are open: anyone who reaches this instance can create, ingest into and cancel any stream (give --jwt-secret or --jwt-public-key-file)")
        }
        try await server.run()
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }

    /// `nil` when unset or neither true nor false (`1`/`0`, `yes`/`no` too); ``validate()`` refuses the latter.
    static func boolean(_ name: String) -> Bool? {
        switch environment(name)?.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no", "": return false
        default: return nil
        }
    }

    /// `nil` when unset or not an integer; ``validate()`` refuses the latter.
    static func integer(_ name: String) -> Int? {
        environment(name).flatMap { Int($0) }
    }
}
