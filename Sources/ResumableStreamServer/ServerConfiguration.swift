import Logging
import ResumableStream

/// Everything the server is configured with; the executable fills it from flags and environment.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port (tests read it back from the running server).
    public var port = 8080
    /// Connections waiting to be accepted; a crowd that reconnects at once needs more than 256.
    public var backlog = 1024
    /// `redis://[[user]:password@]host[:port][/db]`; without it the embedded broker runs, for a
    /// single instance.
    public var redisURL: String?
    public var keyPrefix = "resumable-stream"
    /// How long a resuming instance waits for the producer's acknowledgement.
    public var acknowledgementTimeout: Duration = .seconds(1)
    /// How long a finished stream is still answered before its sentinel says `DONE`.
    public var replayGrace: Duration = .seconds(30)
    public var streamBufferLimit = 64 * 1024 * 1024
    public var processBufferLimit = 512 * 1024 * 1024
    public var maxStreams = 1_000
    public var maxReaders = 10_000
    public var maxRequestBodySize = 64 * 1024
    public var heartbeatInterval: Duration = .seconds(15)
    public var retryMilliseconds = 1000
    /// At SIGTERM: how long running producers may go on before they are cancelled.
    public var drainTimeout: Duration = .seconds(30)
    /// At SIGTERM: how long the instance still answers requests, `/readyz` saying `503`, before it
    /// closes its listener, so that a load balancer sees it go; runs alongside the drain.
    public var shutdownDelay: Duration = .seconds(5)
    /// How long a connection may take to send a request head, from its opening or from the first
    /// bytes of a request that follows another.
    public var headerTimeout: Duration = .seconds(10)
    /// How long a kept-alive connection may wait between requests.
    public var idleTimeout: Duration = .seconds(60)
    /// How often the server gives back to the system the memory its allocator holds free (when it
    /// holds at least 4 MiB): after a burst of connections, resident memory returns towards what
    /// the connections that stay need. `nil`: never.
    public var freedMemoryInterval: Duration? = .seconds(10)
    /// The bound on every Redis call (the command timeout of the client and the subscriber).
    public var brokerTimeout: Duration = .seconds(2)
    /// The lease of a live stream's sentinel, in seconds: a producer that dies frees its id within it.
    public var leaseSeconds = 15
    /// How long a finished stream's `DONE` sentinel stays, in seconds.
    public var doneExpirySeconds = 86_400
    /// For a `rediss://` URL: the PEM file of the CAs to trust (else the system's trust store),
    /// and this client's certificate and key for servers that ask for one.
    public var redisTLSCAFile: String?
    public var redisTLSCertificateFile: String?
    public var redisTLSKeyFile: String?
    /// `standalone` (one Redis), or `cluster`: ``redisURL`` names one seed node of a Redis Cluster
    /// or several, comma-separated; pub/sub is sharded and a stream's names share its slot.
    public var redisMode: RedisMode = .standalone
    /// `memory` (the reference's way), or `redis`: every stream also kept in Redis, readable from
    /// any instance whether or not its producer lives. Needs ``redisURL``.
    public var durability: ResumableStreamDurability = .memory
    /// Durable streams: how long a stream stays readable after its end, in seconds.
    public var retentionSeconds = 3600
    /// Durable ingest streams: how long one whose producer went away waits to be continued.
    public var ingestReattachSeconds = 30
    /// Origins the `proxy` source may reach (`*` for any); empty switches it off.
    public var proxyAllowedOrigins: [String] = []
    /// The HS256 secret that write tokens are signed with (32 bytes or more).
    public var jwtSecret: String?
    /// A PEM public key (RSA for RS256, P-256 EC for ES256) that write tokens are verified with.
    /// With neither this nor ``jwtSecret``, anyone who reaches the service may write any stream.
    public var jwtPublicKeyFile: String?
    /// Whether reads need a token too (needs a key).
    public var requireReadToken = false
    /// The origins whose web pages may call the service (`*` for any); empty: no CORS headers.
    public var corsAllowedOrigins: [String] = []
    public var logLevel: Logger.Level = .info

    public init() {}
}

/// How the server reaches Redis.
public enum RedisMode: String, Sendable, CaseIterable {
    case standalone
    case cluster
}
