import Logging

/// How a ``ResumableStreamContext`` behaves. The defaults match the reference where it has one.
public struct ResumableStreamOptions: Sendable {
    /// Every key and channel lives under `<keyPrefix>:rs`. Instances that share streams share it.
    public var keyPrefix: String
    /// How long a resuming consumer waits for the producer's first answer (the reference: 1 s).
    public var acknowledgementTimeout: Duration
    /// The sentinel's expiry, in seconds (the reference: 24 hours). It is set on every path, and a
    /// live producer renews it at half that interval, so a dead producer's sentinel goes away.
    public var sentinelExpirySeconds: Int
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
    public var logger: Logger

    public init(
        keyPrefix: String = "resumable-stream",
        acknowledgementTimeout: Duration = .seconds(1),
        sentinelExpirySeconds: Int = 86_400,
        frameSize: Int = 64 * 1024,
        streamBufferLimit: Int = 64 * 1024 * 1024,
        processBufferLimit: Int = 512 * 1024 * 1024,
        replayGrace: Duration = .seconds(30),
        watchdogInterval: Duration = .seconds(5),
        logger: Logger = Logger(label: "resumable-stream", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.keyPrefix = keyPrefix
        self.acknowledgementTimeout = acknowledgementTimeout
        self.sentinelExpirySeconds = sentinelExpirySeconds
        self.frameSize = frameSize
        self.streamBufferLimit = streamBufferLimit
        self.processBufferLimit = processBufferLimit
        self.replayGrace = replayGrace
        self.watchdogInterval = watchdogInterval
        self.logger = logger
    }
}
