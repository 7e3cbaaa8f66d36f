import Foundation
import Logging
import ServiceLifecycle
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

/// What ``ResumableStreamContext/createStreamIfAbsent(_:source:)`` gives back.
public enum ResumableStreamCreation: Sendable {
    /// The stream is new and this process produces it.
    case created(ResumableStreamReader)
    /// The id is taken, by a live or a finished stream; nothing was started.
    case exists(ResumableStreamState)
}

/// Turns streams of text into streams that a client can resume after losing its connection, and
/// that other clients can follow, across processes that share one broker (Redis) and key prefix.
///
/// Speaks vercel/resumable-stream's protocol: a reference instance and a Swift one on the same
/// Redis and prefix resume each other's streams.
///
/// The context is a `Service`: its ``run()`` owns every producer and follower mirror of the process
/// as a child task, so it must run (in a `ServiceGroup`, or a task of the caller's) for streams to
/// be produced and followed. It returns once ``shutdown(drainTimeout:)`` has ended them all, and
/// cancelling it cancels them.
///
/// Every failure of the broker reaches the caller as ``ResumableStreamError/broker(_:)``, within the
/// broker's own timeout (for Redis, the client's command timeout). A producer serves its own
/// readers, existence checks and cancellations from memory, so they work whether or not the broker
/// answers.
public final class ResumableStreamContext: Service, Sendable {
    public var options: ResumableStreamOptions { core.options }
    public var broker: any StreamBroker { core.broker }
    let core: ContextCore
    private let registry = Mutex(Registry())
    /// The work that ``run()`` owns: a producer's or a mirror's whole life, each one task.
    private let jobs: AsyncStream<@Sendable () async -> Void>
    private let submitJob: AsyncStream<@Sendable () async -> Void>.Continuation

    private struct Registry {
        var producers: [String: Producer] = [:]
        /// Producers whose source still runs; the others are in their replay grace.
        var producing = 0
        var mirrors: [String: (mirror: any StreamFollower, readers: Int)] = [:]
        var shuttingDown = false
    }

    public init(broker: any StreamBroker, options: ResumableStreamOptions = ResumableStreamOptions()) {
        self.core = ContextCore(broker: broker, options: options)
        (jobs, submitJob) = AsyncStream.makeStream()
    }

    /// Runs the producers and the follower mirrors of this process, each as a child task, until
    /// ``shutdown(drainTimeout:)`` has ended them; cancelling the task cancels them.
    ///
    /// In a `ServiceGroup`, place the context before the services that use it: it returns once its
    /// work has ended and the group has asked it to stop (a service that returns before its turn
    /// would stop the whole group). Outside a group, it returns when cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for await job in jobs {
                group.addTask { await job() }
            }
        }
        try? await gracefulShutdown()
    }

    /// Hands a producer's or a mirror's life to ``run()``; `false` once it has stopped taking work.
    private func submit(_ job: @escaping @Sendable () async -> Void) -> Bool {
        if case .terminated = submitJob.yield(job) { return false }
        return true
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
        switch try await claim(streamId, continuable: false) {
        case .claimed(let requests, let claimedAt, let writer):
            return .stream(try produce(streamId, resumeAt: resumeAt, source: source, requests: requests, claimedAt: claimedAt, writer: writer))
        case .taken(let state):
            // A durable stream stays readable after its end.
            if core.store != nil, let result = try await followStored(streamId, resumeAt: resumeAt) {
                return result
            }
            return state == .finished ? .finished : try await follow(streamId, resumeAt: resumeAt, viaStore: false)
        }
    }

    /// A durable stream from the store, whoever produces it and whether or not it lives; `nil`
    /// when neither the store nor the sentinel has the stream. A live stream without a log is one
    /// that a reference instance (or one in memory mode) produces, or one whose log is being
    /// created this instant: its producer is asked, as the reference does. The store's answer
    /// carries the sentinel's: one round trip.
    private func followStored(_ streamId: String, resumeAt: Int) async throws -> ResumableStreamResult? {
        guard let store = core.store else { return nil }
        switch try await core.brokered({ try await store.inspect(core.wire.storedKeys(streamId), times: core.storedTimes) }) {
        case .ended(let length, _) where resumeAt > length:
            // Refused before it starts, as a finished stream in memory is: a reader could only fail.
            throw ResumableStreamError.offsetBeyondEnd(offset: resumeAt, length: length)
        case .live, .ended: return try await follow(streamId, resumeAt: resumeAt, viaStore: true)
        case .none(sentinel: .live): return try await follow(streamId, resumeAt: resumeAt, viaStore: false)
        case .none(sentinel: .finished): return .finished
        case .none(sentinel: .none): return nil
        }
    }

    /// Creates a stream only if its id was never used: the first caller for an id becomes its
    /// producer and runs `source`; every later one gets `.exists`, and no second producer starts.
    ///
    /// A `continuable` durable stream whose source throws ``SourceDetached`` is not ended: it
    /// waits ``ResumableStreamOptions/ingestReattachSeconds`` for another producer, on any instance,
    /// to go on with it (``continueStream(_:from:source:)``), and then ends as lost.
    public func createStreamIfAbsent<Source: AsyncSequence & SendableMetatype>(
        _ streamId: String,
        continuable: Bool = false,
        source: @escaping @Sendable () -> Source
    ) async throws -> ResumableStreamCreation where Source.Element == String {
        try Self.validate(streamId)
        switch try await claim(streamId, continuable: continuable) {
        case .claimed(let requests, let claimedAt, let writer):
            return .created(try produce(
                streamId, resumeAt: 0, source: source, requests: requests, claimedAt: claimedAt, writer: writer, continuable: continuable
            ))
        case .taken(let state):
            return .exists(state)
        }
    }

    private enum Claim {
        /// The sentinel was created by this call (its lease starting no later than `at`): produce,
        /// answering on this subscription, and writing the store (durable) with this token.
        case claimed(BrokerSubscription, at: ContinuousClock.Instant, writer: String)
        /// `.live` or `.finished`.
        case taken(ResumableStreamState)
    }

    /// INCR on the sentinel, as the reference does: 1 means the id was free. A finished stream's
    /// sentinel holds `DONE`, which INCR refuses. A new sentinel gets a lease, which its producer
    /// renews.
    private func claim(_ streamId: String, continuable: Bool) async throws -> Claim {
        try checkRunning()
        // Listen for requests before the sentinel tells anyone the stream exists.
        let requests = try await core.brokered { try await core.broker.subscribe(to: core.wire.requestChannel(streamId)) }
        let sent = ContinuousClock.now
        let count: Int?
        do {
            count = try await core.brokered {
                try await core.broker.incrementSentinel(core.wire.sentinelKey(streamId), expireInSeconds: core.options.leaseSeconds)
            }
        } catch {
            requests.cancel()
            throw error
        }
        guard count == 1 else {
            requests.cancel()
            return .taken(count == nil ? .finished : .live)
        }
        let writer = UUID().uuidString
        if let store = core.store {
            // The log exists before anything is written to it, so that a producer that dies at
            // once leaves a stream that ends as lost, not one that vanishes.
            let created: Bool
            do {
                created = try await core.brokered {
                    try await store.create(core.wire.storedKeys(streamId), writer: writer, ingest: continuable, replacing: false, times: core.storedTimes)
                }
            } catch {
                requests.cancel()
                throw error
            }
            guard created else {
                requests.cancel()
                return .taken(.finished)
            }
        }
        return .claimed(requests, at: sent, writer: writer)
    }

    /// Creates a stream and becomes its producer, whether or not the id was used before.
    public func createNewResumableStream<Source: AsyncSequence & SendableMetatype>(
        _ streamId: String,
        source: @escaping @Sendable () -> Source
    ) async throws -> ResumableStreamReader where Source.Element == String {
        try Self.validate(streamId)
        try checkRunning()
        let requests = try await core.brokered { try await core.broker.subscribe(to: core.wire.requestChannel(streamId)) }
        let sent = ContinuousClock.now
        let writer = UUID().uuidString
        do {
            try await core.brokered {
                try await core.broker.set(core.wire.sentinelKey(streamId), to: "1", expireInSeconds: core.options.leaseSeconds)
            }
            if let store = core.store {
                // A new stream under a used id: a new log, and a writer of the old one is fenced.
                _ = try await core.brokered {
                    try await store.create(core.wire.storedKeys(streamId), writer: writer, ingest: false, replacing: true, times: core.storedTimes)
                }
            }
        } catch {
            requests.cancel()
            throw error
        }
        return try produce(streamId, resumeAt: 0, source: source, requests: requests, claimedAt: sent, writer: writer)
    }

    /// Resumes a stream that exists, from `resumeAt` (in UTF-16 code units, as the reference counts).
    /// A stream that this process produces is read from memory, without the broker.
    public func resumeExistingStream(_ streamId: String, resumeAt: Int = 0) async throws -> ResumableStreamResult {
        try Self.validate(streamId)
        guard resumeAt >= 0 else { throw ResumableStreamError.invalidOffset(resumeAt) }
        try checkRunning()
        if core.store != nil {
            return try await followStored(streamId, resumeAt: resumeAt) ?? .notFound
        }
        if let producer = localProducer(streamId) {
            return .stream(ResumableStreamReader(buffer: producer.buffer, startOffset: resumeAt, lease: nil))
        }
        switch try await core.brokered({ try await core.broker.get(core.wire.sentinelKey(streamId)) }) {
        case nil: return .notFound
        case WireProtocol.doneValue: return .finished
        default: return try await follow(streamId, resumeAt: resumeAt, viaStore: false)
        }
    }

    /// The existence check: none, live, or finished. A stream that this process produces is live
    /// until its sentinel says `DONE`, and is answered from memory.
    public func state(of streamId: String) async throws -> ResumableStreamState {
        try Self.validate(streamId)
        if let producer = localProducer(streamId), !producer.isLeaving {
            return producer.hasStoredEnd ? .finished : .live
        }
        if let store = core.store {
            switch try await core.brokered({ try await store.inspect(core.wire.storedKeys(streamId), times: core.storedTimes) }) {
            case .live: return .live
            case .ended: return .finished
            case .none(let sentinel): return sentinel
            }
        }
        switch try await core.brokered({ try await core.broker.get(core.wire.sentinelKey(streamId)) }) {
        case nil: return .none
        case WireProtocol.doneValue: return .finished
        default: return .live
        }
    }

    /// Cancels a live stream wherever its producer runs: its source is cancelled, and every reader
    /// ends with ``ResumableStreamError/cancelled``.
    ///
    /// A durable stream that no producer writes (an ingest that waits to be continued) is ended as
    /// cancelled in the store.
    ///
    /// - Returns: whether a producer received the cancellation, or the store ended the stream.
    @discardableResult
    public func cancel(_ streamId: String) async throws -> Bool {
        try Self.validate(streamId)
        if let producer = localProducer(streamId), !producer.isLeaving {
            producer.cancel()
            return true
        }
        let request = WireProtocol.encode(.cancel)
        let delivered = try await core.brokered { try await core.broker.publish(request, to: core.wire.requestChannel(streamId)) } > 0
        guard let store = core.store else { return delivered }
        // A producer that is leaving its stream may still receive the request, and do nothing with
        // it: the store ends a stream that no writer holds, and leaves one that a writer holds to it.
        let ended = try await core.brokered { try await store.cancel(core.wire.storedKeys(streamId), times: core.storedTimes) }
        return delivered || ended
    }

    /// The producer of `streamId` in this process, until its sentinel says `DONE`.
    func localProducer(_ streamId: String) -> Producer? {
        registry.withLock { $0.producers[streamId] }
    }

    /// Waits until the producer of `streamId` in this process, if any, is done (its grace over and
    /// its sentinel `DONE`). For tests and for draining at shutdown.
    public func waitForProducer(_ streamId: String) async {
        guard let producer = registry.withLock({ $0.producers[streamId] }) else { return }
        _ = await producer.closed.wait()
    }

    /// The streams this process produces (their source runs), those whose source has ended and
    /// that it still answers in their replay grace, and those it follows for local readers.
    public var activeStreams: (producing: Int, replaying: Int, following: Int) {
        registry.withLock { ($0.producing, $0.producers.count - $0.producing, $0.mirrors.count) }
    }

    /// Bytes held by all stream buffers of this process.
    public var bufferedBytes: Int { core.budget.bytesInUse }

    /// Whether ``shutdown(drainTimeout:)`` has begun.
    public var isShuttingDown: Bool { registry.withLock { $0.shuttingDown } }

    /// Drains this process: from now on it starts and follows no stream (those calls throw
    /// ``ResumableStreamError/shuttingDown``); the sources that run may finish within
    /// `drainTimeout`, and are cancelled after it. Then the replay graces end (each stream is
    /// marked done), and readers of streams produced elsewhere end with `.shuttingDown`, so that
    /// their clients resume on another instance. Returns when every producer is closed.
    public func shutdown(drainTimeout: Duration) async {
        let producers = registry.withLock { registry in
            registry.shuttingDown = true
            return Array(registry.producers.values)
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for producer in producers {
                    _ = await producer.sourceEnded.wait()
                }
            }
            group.addTask { try? await Task.sleep(for: drainTimeout) }
            await group.next()
            group.cancelAll()
        }
        // Stops the sources that still run; those that ended give up the rest of their grace.
        producers.forEach { $0.cancel() }
        let mirrors = registry.withLock { $0.mirrors.values.map(\.mirror) }
        mirrors.forEach { $0.stop(.shuttingDown) }
        for producer in producers {
            _ = await producer.closed.wait()
        }
        // Mirrors stopped above end by themselves; ``run()`` returns once they have.
        submitJob.finish()
    }

    private func checkRunning() throws(ResumableStreamError) {
        if isShuttingDown { throw .shuttingDown }
    }

    func produce<Source: AsyncSequence & SendableMetatype>(
        _ streamId: String,
        resumeAt: Int,
        source: @escaping @Sendable () -> Source,
        requests: BrokerSubscription,
        claimedAt: ContinuousClock.Instant,
        writer: String,
        continuable: Bool = false,
        stored: [Substring] = []
    ) throws -> ResumableStreamReader where Source.Element == String {
        let storage = core.store.map { store in
            Producer.Storage(
                store: store,
                keys: core.wire.storedKeys(streamId),
                ingest: continuable,
                storedLength: stored.reduce(0) { $0 + TextUnits.count($1) }
            )
        }
        let producer = Producer(streamId: streamId, core: core, claimedAt: claimedAt, producerId: writer, storage: storage)
        do {
            // A continued stream's producer has its text so far, for its readers and the
            // reference's listeners.
            try producer.buffer.append(contentsOf: stored)
        } catch {
            producer.buffer.release()
            requests.cancel()
            throw error
        }
        let late = registry.withLock { registry in
            registry.producers[streamId] = producer
            registry.producing += 1
            return registry.shuttingDown
        }
        let sourceEnded: @Sendable () -> Void = { [weak self] in
            self?.registry.withLock { $0.producing -= 1 }
        }
        let removeFromRegistry: @Sendable () -> Void = { [weak self] in
            self?.registry.withLock { registry in
                if registry.producers[streamId] === producer {
                    registry.producers[streamId] = nil
                }
            }
        }
        let run: @Sendable () async -> Void = {
            await producer.run(source: source, requests: requests, onSourceEnded: sourceEnded, onClose: removeFromRegistry)
        }
        guard submit(run) else {
            // The context has stopped: nothing will run the producer. Its lease expires by itself.
            producer.cancel()
            requests.cancel()
            sourceEnded()
            removeFromRegistry()
            throw ResumableStreamError.shuttingDown
        }
        if late {
            // Claimed while the shutdown began: the drain may not have seen it.
            producer.cancel()
        }
        return ResumableStreamReader(buffer: producer.buffer, startOffset: resumeAt, lease: nil)
    }

    /// A reader of a stream produced elsewhere, or here: a producer in this process is read directly,
    /// and followers in this process share one mirror of a remote producer.
    /// `viaStore`: read a durable stream from the store rather than ask its producer.
    func follow(_ streamId: String, resumeAt: Int, viaStore: Bool) async throws -> ResumableStreamResult {
        enum Source {
            case producer(Producer)
            case mirror(any StreamFollower, isNew: Bool)
            case shuttingDown
        }
        let source = registry.withLock { registry -> Source in
            if registry.shuttingDown { return .shuttingDown }
            // A durable stream's followers read the store, here too: its producer may leave it to
            // another (an ingest continued elsewhere) while they read.
            if !viaStore, let producer = registry.producers[streamId] {
                return .producer(producer)
            }
            if let entry = registry.mirrors[streamId] {
                registry.mirrors[streamId]?.readers += 1
                return .mirror(entry.mirror, isNew: false)
            }
            let mirror: any StreamFollower = viaStore ? core.store.map { DurableMirror(streamId: streamId, core: core, store: $0) } ?? Mirror(streamId: streamId, core: core)
                : Mirror(streamId: streamId, core: core)
            registry.mirrors[streamId] = (mirror, 1)
            return .mirror(mirror, isNew: true)
        }
        switch source {
        case .shuttingDown:
            throw ResumableStreamError.shuttingDown
        case .producer(let producer):
            return .stream(ResumableStreamReader(buffer: producer.buffer, startOffset: resumeAt, lease: nil))
        case .mirror(let mirror, let isNew):
            let lease = ReaderLease { [weak self] in self?.releaseMirror(mirror) }
            if isNew, !submit({ await mirror.run() }) {
                mirror.stop(.shuttingDown)
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

    private func releaseMirror(_ mirror: any StreamFollower) {
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
            mirror.stop(.cancelled)
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
    /// Where durable streams are kept; `nil` in memory.
    let store: (any StreamStore)?
    let storedTimes: StoredStreamTimes
    var logger: Logger { options.logger }

    init(broker: any StreamBroker, options: ResumableStreamOptions) {
        self.broker = broker
        self.options = options
        self.wire = WireProtocol(prefix: options.keyPrefix, layout: broker.keyLayout)
        self.budget = MemoryBudget(limit: options.processBufferLimit)
        self.store = options.durability == .redis ? broker as? any StreamStore : nil
        self.storedTimes = StoredStreamTimes(
            leaseSeconds: options.leaseSeconds,
            // A live stream's log is kept at least a lease past each renewal.
            retentionSeconds: max(options.retentionSeconds, options.leaseSeconds),
            ingestReattachSeconds: options.ingestReattachSeconds,
            doneExpirySeconds: options.doneExpirySeconds
        )
    }

    /// Runs a broker call; any failure but the caller's cancellation becomes
    /// ``ResumableStreamError/broker(_:)``, so that callers see one typed error for it.
    func brokered<Value>(_ call: () async throws -> Value) async throws -> Value {
        do {
            return try await call()
        } catch let error as ResumableStreamError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ResumableStreamError.broker("\(error)")
        }
    }
}
