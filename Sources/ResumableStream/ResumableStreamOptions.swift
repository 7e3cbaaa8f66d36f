import Logging

/// Where a stream's text lives.
public enum ResumableStreamDurability: String, Sendable, CaseIterable {
    /// In its producer's memory, as in the reference: cheap, and gone with the producer.
    case memory
    /// Also in the broker's store (Redis), batched with its publication: any instance answers a
    /// resume from the store, during the stream and for ``ResumableStreamOptions/retentionSeconds``
    /// after its end, whether or not its producer lives. Needs a broker that is a ``StreamStore``.
    case redis
}

/// How a ``ResumableStreamContext`` behaves. The defaults match the reference where it has one.
public struct ResumableStreamOptions: Sendable {
    /// Every key and channel lives under `<keyPrefix>:rs`. Instances that share streams share it.
    public var keyPrefix: String
    /// How long a resuming consumer waits for the producer's first answer (the reference: 1 s).
    public var acknowledgementTimeout: Duration
    /// The lease of a live stream's sentinel, in seconds: its producer renews it (every third of it)
    /// while it lives, so the sentinel of a producer that died goes away within this time, and the
    /// id is free again. Followers take a sentinel that has gone for a producer that is lost.
    public var leaseSeconds: Int
    /// How long a finished stream's `DONE` sentinel stays, in seconds (the reference: 24 hours).
    public var doneExpirySeconds: Int
    /// The largest message the producer publishes: a long replay goes out in frames of this size.
    public var frameSize: Int
    /// The most bytes (UTF-8) one stream's buffer holds; past it the stream ends with
    /// ``ResumableStreamError/streamBufferLimitExceeded(limit:)``.
    public var streamBufferLimit: Int
    /// The most bytes all buffers of this process hold together; past it the stream that needed
    /// more ends with ``ResumableStreamError/processBufferLimitExceeded(limit:)``.
    public var processBufferLimit: Int
    /// How long after its source ends a producer still answers resume requests with the whole
    /// stream, before the sentinel says `DONE`. Zero behaves as the reference does.
    public var replayGrace: Duration
    /// How long a follower waits, idle, before it checks that its producer is still there.
    public var watchdogInterval: Duration
    public var durability: ResumableStreamDurability
    /// Durable streams: how long a stream stays readable after its end (every key it leaves
    /// expires), and after its last write if its producer died unseen.
    public var retentionSeconds: Int
    /// Durable ingest streams: how long a stream whose producer went away waits for another to
    /// continue it, before it ends as lost.
    public var ingestReattachSeconds: Int
    public var logger: Logger

    public init(
        keyPrefix: String = "resumable-stream",
        acknowledgementTimeout: Duration = .seconds(1),
        leaseSeconds: Int = 15,
        doneExpirySeconds: Int = 86_400,
        frameSize: Int = 64 * 1024,
        streamBufferLimit: Int = 64 * 1024 * 1024,
        processBufferLimit: Int = 512 * 1024 * 1024,
        replayGrace: Duration = .seconds(30),
        watchdogInterval: Duration = .seconds(5),
        durability: ResumableStreamDurability = .memory,
        retentionSeconds: Int = 3600,
        ingestReattachSeconds: Int = 30,
        logger: Logger = Logger(label: "resumable-stream", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.keyPrefix = keyPrefix
        self.acknowledgementTimeout = acknowledgementTimeout
        self.leaseSeconds = leaseSeconds
        self.doneExpirySeconds = doneExpirySeconds
        self.frameSize = frameSize
        self.streamBufferLimit = streamBufferLimit
        self.processBufferLimit = processBufferLimit
        self.replayGrace = replayGrace
        self.watchdogInterval = watchdogInterval
        self.durability = durability
        self.retentionSeconds = retentionSeconds
        self.ingestReattachSeconds = ingestReattachSeconds
        self.logger = logger
    }
}
