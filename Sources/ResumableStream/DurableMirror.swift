import Synchronization

/// What the context shares between the followers of one stream in this process: a ``Mirror`` of a
/// producer's memory, or a ``DurableMirror`` of the store.
protocol StreamFollower: AnyObject, Sendable {
    var streamId: String { get }
    var buffer: StreamBuffer { get }
    /// How the start went; followers wait for it before they read.
    var started: OneShot<Mirror.Start> { get }
    func run() async
    func stop(_ reason: ResumableStreamError)
}

extension Mirror: StreamFollower {}

/// One process's copy of a durable stream, shared by every follower of it in this process: it
/// reads the store from what it has, then takes each new batch from the stream's append channel,
/// reading the store again wherever the channel left a gap. It never asks the producer anything,
/// so it answers whether or not the producer lives, and after the stream's end.
///
/// ``run()`` is its one owner task (a child of the context's); its child, the watchdog, asks the
/// store while the stream is idle whether it ended (a lost end message) or lost its producer,
/// which the store then records.
final class DurableMirror: StreamFollower {
    let streamId: String
    let buffer: StreamBuffer
    let started = OneShot<Mirror.Start>()

    private let core: ContextCore
    private let store: any StreamStore
    private let keys: StoredStreamKeys
    private let state = Mutex(State())

    private struct State {
        var subscription: BrokerSubscription?
        var lastMessage = ContinuousClock.now
        /// The watchdog found the stream ended: read the store.
        var endStored = false
        /// The watchdog found neither log nor live sentinel: the stream is gone.
        var vanished = false
        var stopped = false
    }

    /// Store entries read in one round trip.
    private static let page = 64

    init(streamId: String, core: ContextCore, store: any StreamStore) {
        self.streamId = streamId
        self.core = core
        self.store = store
        self.keys = core.wire.storedKeys(streamId)
        self.buffer = StreamBuffer(limit: core.options.streamBufferLimit, budget: core.budget)
    }

    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.watch() }
            await follow()
            group.cancelAll()
        }
    }

    func stop(_ reason: ResumableStreamError = .cancelled) {
        let subscription = state.withLock { state in
            state.stopped = true
            return state.subscription
        }
        subscription?.cancel()
        fail(reason)
        buffer.release()
    }

    private var isDone: Bool { buffer.outcome != nil || state.withLock { $0.stopped } }

    /// The stream's end as the store has it: its readers read the text, then this end.
    private func finish(_ outcome: StreamBuffer.Outcome) {
        buffer.finish(StoredLog.named(outcome, streamId: streamId))
        started.set(.acknowledged)
    }

    /// Following failed (the broker, or a store whose text does not add up): a reader that has
    /// not started gets the error instead of a stream.
    private func fail(_ error: ResumableStreamError) {
        buffer.finish(.failed(error))
        started.set(.failed(error))
    }

    /// Subscribes, reads the store from what it has, then appends each batch the channel brings;
    /// a gap, a batch past what it has, or a store that has ended is read from the store.
    private func follow() async {
        var failingSince: ContinuousClock.Instant?
        while !isDone, !Task.isCancelled {
            let events: BrokerSubscription
            do {
                events = try await core.broker.subscribe(to: keys.appendChannel)
                let stopped = state.withLock { state in
                    state.subscription = events
                    state.endStored = false
                    return state.stopped
                }
                if stopped {
                    events.cancel()
                    return
                }
                try await readStore()
                started.set(.acknowledged)
                failingSince = nil
                for try await event in events {
                    state.withLock { $0.lastMessage = .now }
                    switch event {
                    case .message(let message):
                        try await received(message)
                    case .gap:
                        try await readStore()
                    }
                    if isDone { break }
                }
            } catch {
                if Task.isCancelled || isDone { return }
                // The first read fails with the broker's error; later ones wait for the broker
                // as long as a producer may (its lease and an acknowledgement).
                let now = ContinuousClock.now
                let since = failingSince ?? now
                failingSince = since
                let limit = Duration.seconds(core.options.leaseSeconds) + core.options.acknowledgementTimeout
                if started.currentValue == nil || now - since >= limit {
                    fail(.broker("\(error)"))
                    return
                }
                try? await Task.sleep(for: .milliseconds(250))
                continue
            }
            // The subscription ended: stopped, or woken by the watchdog.
            let (vanished, endStored) = state.withLock { ($0.vanished, $0.endStored) }
            if vanished {
                finish(.failed(.producerLost(streamId: streamId)))
            } else if endStored {
                try? await readStore()
            }
        }
    }

    private func received(_ message: String) async throws {
        switch StoredLog.decode(message) {
        case .chunks(let frame, let start)?:
            var decoder = ChunkFrames.Decoder()
            let chunks = decoder.decode(frame)
            switch StoredLog.fit(chunks, start: start, length: buffer.length) {
            case .append(let new):
                append(new)
            case .gap:
                try await readStore()
            case .mismatch:
                fail(.sourceFailed("the store's text of stream '\(streamId)' does not match what this instance has"))
            }
        case .end(let outcome, let length)?:
            if length == buffer.length {
                finish(outcome)
            } else {
                try await readStore()
            }
        case nil:
            core.logger.debug("ignored a malformed stored-stream message", metadata: ["stream": "\(streamId)"])
        }
    }

    /// A full buffer ends the stream for this instance's readers, as in memory mode.
    private func append(_ chunks: [Substring]) {
        do {
            try buffer.append(contentsOf: chunks)
        } catch {
            fail(error)
        }
    }

    /// Reads every entry after what the buffer has, page by page, until the end or the store's
    /// last entry. The first pages are small, and the followers start with the first: a long
    /// stream's first text does not wait for the rest of it.
    private func readStore() async throws {
        var count = 2
        while !isDone {
            let entries = try await store.read(keys, after: buffer.length, count: count)
            defer { started.set(.acknowledged) }
            for (id, field, value) in entries {
                switch StoredLog.entry(id: id, field: field, value: value) {
                case .chunks(let frame, let end)?:
                    var decoder = ChunkFrames.Decoder()
                    let chunks = decoder.decode(frame[...])
                    let start = end - chunks.reduce(0) { $0 + TextUnits.count($1) }
                    switch StoredLog.fit(chunks, start: start, length: buffer.length) {
                    case .append(let new):
                        append(new)
                    case .gap, .mismatch:
                        fail(.sourceFailed("the store's text of stream '\(streamId)' has a gap at \(buffer.length)"))
                        return
                    }
                case .end(let outcome, let length)?:
                    guard length == buffer.length else {
                        fail(.sourceFailed("the store's end of stream '\(streamId)' is at \(length), not \(buffer.length)"))
                        return
                    }
                    finish(outcome)
                    return
                case .created?, nil:
                    continue
                }
            }
            if entries.count < count { return }
            count = min(count * 4, Self.page)
        }
    }

    /// While the stream is idle, asks the store how it is, one interval after the last message:
    /// an end the channel lost is read from the store, and a stream whose producer has gone for
    /// good (no writer, none expected) is ended as lost there, for every instance alike.
    private func watch() async {
        let interval = core.options.watchdogInterval
        // A stream whose log and sentinel are both gone may be one whose Redis restarted empty:
        // its producer, if it lives, puts the sentinel back within a third of its lease.
        var goneSince: ContinuousClock.Instant?
        while !Task.isCancelled, !isDone {
            let due = state.withLock { $0.lastMessage } + interval
            if due > .now {
                guard (try? await Task.sleep(until: due, clock: .continuous)) != nil else { return }
                continue
            }
            let inspected = try? await store.inspect(keys, times: core.storedTimes)
            let now = ContinuousClock.now
            if case .none(let sentinel)? = inspected, sentinel != .live {
                goneSince = goneSince ?? now
            } else {
                goneSince = nil
            }
            let gone = goneSince.map { now - $0 >= .seconds(core.options.leaseSeconds) } ?? false
            let wake = state.withLock { state -> BrokerSubscription? in
                state.lastMessage = now
                switch inspected {
                case .ended?: state.endStored = true
                case .none(let sentinel)? where sentinel != .live && gone: state.vanished = true
                default: return nil
                }
                return state.subscription
            }
            wake?.cancel()
        }
    }
}
