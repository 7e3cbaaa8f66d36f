import Logging
import Synchronization

/// What ``ResumableStreamContext/resumableStream(_:resumeAt:source:)`` and
/// ``ResumableStreamContext/resumeExistingStream(_:resumeAt:)`` give back.
public enum ResumableStreamResult: Sendable {
    case stream(ResumableStreamReader)
    /// There is no stream with that id.
    case notFound
    /// The stream has finished (and its replay grace is over).
    case finished
}

/// What the existence check finds.
public enum ResumableStreamState: Sendable, Hashable {
    case none
    case live
    case finished
}

/// Turns streams of text into streams that a client can resume after losing its connection, and
/// that other clients can follow, across processes that share one broker (Redis) and key prefix.
///
/// Speaks vercel/resumable-stream's protocol: a reference instance and a Swift one on the same
/// Redis and prefix resume each other's streams.
public final class ResumableStreamContext: Sendable {
    public var options: ResumableStreamOptions { core.options }
    let core: ContextCore
    private let registry = Mutex(Registry())

    private struct Registry {
        var producers: [String: Producer] = [:]
        var mirrors: [String: (mirror: Mirror, readers: Int)] = [:]
    }

    public init(broker: any StreamBroker, options: ResumableStreamOptions = ResumableStreamOptions()) {
        self.core = ContextCore(broker: broker, options: options)
    }

    /// Create-or-resume, idempotent: the first call for an id becomes the stream's producer and runs
    /// `source`; later calls resume it from `resumeAt`. A finished stream gives `.finished`, and its
    /// source is never called again.
    public func resumableStream<Source: AsyncSequence & SendableMetatype>(
        _ streamId: String,
        resumeAt: Int = 0,
        source: @escaping @Sendable () -> Source
    ) async throws -> ResumableStreamResult where Source.Element == String {
        try Self.validate(streamId)
        guard resumeAt >= 0 else { throw ResumableStreamError.invalidOffset(resumeAt) }
        // Listen for requests before the sentinel tells anyone the stream exists.
        let requests = try await core.broker.subscribe(to: core.wire.requestChannel(streamId))
        let count: Int?
        do {
            count = try await core.broker.incrementSentinel(
                core.wire.sentinelKey(streamId),
                expireInSeconds: core.options.sentinelExpirySeconds
            )
        } catch {
            requests.cancel()
            throw error
        }
        switch count {
        case nil:
            requests.cancel()
            return .finished
        case 1:
            return .stream(produce(streamId, resumeAt: resumeAt, source: source, requests: requests))
        default:
            requests.cancel()
            return try await follow(streamId, resumeAt: resumeAt)
        }
    }

    /// Creates a stream and becomes its producer, whether or not the id was used before.
    public func createNewResumableStream<Source: AsyncSequence & SendableMetatype>(
        _ streamId: String,
        source: @escaping @Sendable () -> Source
    ) async throws -> ResumableStreamReader where Source.Element == String {
        try Self.validate(streamId)
        let requests = try await core.broker.subscribe(to: core.wire.requestChannel(streamId))
        do {
            try await core.broker.set(
                core.wire.sentinelKey(streamId),
                to: "1",
                expireInSeconds: core.options.sentinelExpirySeconds
            )
        } catch {
            requests.cancel()
            throw error
        }
        return produce(streamId, resumeAt: 0, source: source, requests: requests)
    }

    /// Resumes a stream that exists, from `resumeAt` (in UTF-16 code units, as the reference counts).
    public func resumeExistingStream(_ streamId: String, resumeAt: Int = 0) async throws -> ResumableStreamResult {
        try Self.validate(streamId)
        guard resumeAt >= 0 else { throw ResumableStreamError.invalidOffset(resumeAt) }
        switch try await core.broker.get(core.wire.sentinelKey(streamId)) {
        case nil: return .notFound
        case WireProtocol.doneValue: return .finished
        default: return try await follow(streamId, resumeAt: resumeAt)
        }
    }

    /// The existence check: none, live, or finished.
    public func state(of streamId: String) async throws -> ResumableStreamState {
        try Self.validate(streamId)
        switch try await core.broker.get(core.wire.sentinelKey(streamId)) {
        case nil: return .none
        case WireProtocol.doneValue: return .finished
        default: return .live
        }
    }

    /// Cancels a live stream wherever its producer runs: its source is cancelled, and every reader
    /// ends with ``ResumableStreamError/cancelled``.
    ///
    /// - Returns: whether a producer received the cancellation.
    @discardableResult
    public func cancel(_ streamId: String) async throws -> Bool {
        try Self.validate(streamId)
        if let producer = registry.withLock({ $0.producers[streamId] }) {
            producer.cancel()
            return true
        }
        let request = WireProtocol.encode(.cancel)
        return try await core.broker.publish(request, to: core.wire.requestChannel(streamId)) > 0
    }

    /// Waits until the producer of `streamId` in this process, if any, is done (its grace over and
    /// its sentinel `DONE`). For tests and for draining at shutdown.
    public func waitForProducer(_ streamId: String) async {
        guard let producer = registry.withLock({ $0.producers[streamId] }) else { return }
        _ = await producer.closed.wait()
    }

    /// The streams this process produces, and those it follows for local readers.
    public var activeStreams: (producing: Int, following: Int) {
        registry.withLock { ($0.producers.count, $0.mirrors.count) }
    }

    /// Bytes held by all stream buffers of this process.
    public var bufferedBytes: Int { core.budget.bytesInUse }

    private func produce<Source: AsyncSequence & SendableMetatype>(
        _ streamId: String,
        resumeAt: Int,
        source: @escaping @Sendable () -> Source,
        requests: BrokerSubscription
    ) -> ResumableStreamReader where Source.Element == String {
        let producer = Producer(streamId: streamId, core: core)
        registry.withLock { $0.producers[streamId] = producer }
        producer.start(source: source, requests: requests) { [weak self] in
            self?.registry.withLock { registry in
                if registry.producers[streamId] === producer {
                    registry.producers[streamId] = nil
                }
            }
        }
        return ResumableStreamReader(buffer: producer.buffer, startOffset: resumeAt, lease: nil)
    }

    /// A reader of a stream produced elsewhere, or here: a producer in this process is read directly,
    /// and followers in this process share one mirror of a remote producer.
    private func follow(_ streamId: String, resumeAt: Int) async throws -> ResumableStreamResult {
        enum Source {
            case producer(Producer)
            case mirror(Mirror, isNew: Bool)
        }
        let source = registry.withLock { registry -> Source in
            if let producer = registry.producers[streamId] {
                return .producer(producer)
            }
            if let entry = registry.mirrors[streamId] {
                registry.mirrors[streamId]?.readers += 1
                return .mirror(entry.mirror, isNew: false)
            }
            let mirror = Mirror(streamId: streamId, core: core)
            registry.mirrors[streamId] = (mirror, 1)
            return .mirror(mirror, isNew: true)
        }
        switch source {
        case .producer(let producer):
            return .stream(ResumableStreamReader(buffer: producer.buffer, startOffset: resumeAt, lease: nil))
        case .mirror(let mirror, let isNew):
            let lease = ReaderLease { [weak self] in self?.releaseMirror(mirror) }
            if isNew {
                mirror.start()
            }
            switch await mirror.started.wait() {
            case .acknowledged?:
                return .stream(ResumableStreamReader(buffer: mirror.buffer, startOffset: resumeAt, lease: lease))
            case .finished?:
                return .finished
            case .failed(let error)?:
                throw error
            case nil:
                throw CancellationError()
            }
        }
    }

    private func releaseMirror(_ mirror: Mirror) {
        let stop = registry.withLock { registry -> Bool in
            guard let entry = registry.mirrors[mirror.streamId], entry.mirror === mirror else { return false }
            guard entry.readers > 1 else {
                registry.mirrors[mirror.streamId] = nil
                return true
            }
            registry.mirrors[mirror.streamId]?.readers -= 1
            return false
        }
        if stop {
            mirror.stop()
        }
    }

    /// Stream ids become part of Redis keys and channel names.
    static func validate(_ streamId: String) throws(ResumableStreamError) {
        guard !streamId.isEmpty else { throw .invalidStreamId("it is empty") }
        guard streamId.utf8.count <= 256 else { throw .invalidStreamId("it is longer than 256 bytes") }
        guard !streamId.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw .invalidStreamId("it contains control characters")
        }
    }
}

/// What the producer and the mirrors share with their context.
struct ContextCore: Sendable {
    let broker: any StreamBroker
    let options: ResumableStreamOptions
    let wire: WireProtocol
    let budget: MemoryBudget
    var logger: Logger { options.logger }

    init(broker: any StreamBroker, options: ResumableStreamOptions) {
        self.broker = broker
        self.options = options
        self.wire = WireProtocol(prefix: options.keyPrefix)
        self.budget = MemoryBudget(limit: options.processBufferLimit)
    }
}
