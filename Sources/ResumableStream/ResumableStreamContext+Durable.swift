import Foundation

/// What ``ResumableStreamContext/continueStream(_:from:source:)`` gives back.
public enum ResumableStreamContinuation: Sendable {
    /// This process produces the stream from now on, from `length` (the stored length): the first
    /// `length - offset` units of the source were stored already and are dropped.
    case continued(ResumableStreamReader, length: Int)
    case notFound
    /// The stream has ended (completed, or failed: a producer that never came back is lost).
    case finished(length: Int)
    /// Another producer writes the stream now (or its lease has not run out yet).
    case busy(length: Int)
    /// The offset is past what the store holds: the client has text the stream never got.
    case beyondLength(length: Int)
}

/// What the existence check of ``ResumableStreamContext/status(of:)`` finds, with the length.
public struct ResumableStreamStatus: Sendable, Equatable {
    public var state: ResumableStreamState
    /// The stream's length in offset units (UTF-16 code units, as the reference counts): where a
    /// reader at the end, or a producer that continues it, goes on. `nil` when there is no stream,
    /// or when a finished stream's text is no longer kept.
    public var length: Int?
    /// Why the stream failed, once it has; `nil` while live, and when it completed.
    public var failure: ResumableStreamError?

    public init(state: ResumableStreamState, length: Int?, failure: ResumableStreamError? = nil) {
        self.state = state
        self.length = length
        self.failure = failure
    }
}

extension ResumableStreamContext {
    /// Goes on with a durable ingest stream whose producer went away (its client's connection
    /// broke, or its instance died), from `offset`: what the client believes is stored. The store
    /// decides, atomically, whether this process becomes the stream's writer:
    /// - `offset` equal to the stored length appends the source;
    /// - a smaller one drops the source's first `length - offset` units, as stored already (a
    ///   retry after a lost acknowledgement);
    /// - a larger one is ``ResumableStreamContinuation/beyondLength(length:)``;
    /// - a stream with a producer is ``ResumableStreamContinuation/busy(length:)``: one writer at a
    ///   time, and its token fences off any writer it replaced that comes back.
    public func continueStream<Source: AsyncSequence & SendableMetatype>(
        _ streamId: String,
        from offset: Int,
        source: @escaping @Sendable () -> Source
    ) async throws -> ResumableStreamContinuation where Source.Element == String {
        try Self.validate(streamId)
        guard offset >= 0 else { throw ResumableStreamError.invalidOffset(offset) }
        guard let store = core.store else { throw ResumableStreamError.notDurable }
        if isShuttingDown { throw ResumableStreamError.shuttingDown }
        let keys = core.wire.storedKeys(streamId)
        // Listen for requests before the stream is live again.
        let requests = try await core.brokered { try await core.broker.subscribe(to: core.wire.requestChannel(streamId)) }
        let claimedAt = ContinuousClock.now
        let writer = UUID().uuidString
        let claim: StoreClaim
        do {
            claim = try await core.brokered { try await store.claim(keys, writer: writer, offset: offset, times: core.storedTimes) }
        } catch {
            requests.cancel()
            throw error
        }
        let length: Int
        switch claim {
        case .claimed(let stored): length = stored
        case .none: requests.cancel(); return .notFound
        case .ended(let stored): requests.cancel(); return .finished(length: stored)
        case .busy(let stored): requests.cancel(); return .busy(length: stored)
        case .beyondLength(let stored): requests.cancel(); return .beyondLength(length: stored)
        }
        let stored: [Substring]
        do {
            stored = try await core.brokered { try await self.storedChunks(store, keys, upTo: length) }
        } catch {
            // Leave the stream to the next one that tries.
            try? await store.detach(keys, writer: writer, times: core.storedTimes)
            requests.cancel()
            throw error
        }
        let skip = length - offset
        let reader = try produce(
            streamId,
            resumeAt: length,
            source: { DroppingUnits(base: source(), units: skip) },
            requests: requests,
            claimedAt: claimedAt,
            writer: writer,
            continuable: true,
            stored: stored
        )
        return .continued(reader, length: length)
    }

    /// The stored chunks from 0 up to `length`.
    private func storedChunks(_ store: any StreamStore, _ keys: StoredStreamKeys, upTo length: Int) async throws -> [Substring] {
        var chunks: [Substring] = []
        var offset = 0
        while offset < length {
            let entries = try await store.read(keys, after: offset, count: 256)
            guard !entries.isEmpty else { break }
            for (id, field, value) in entries {
                guard case .chunks(let frame, let end)? = StoredLog.entry(id: id, field: field, value: value), end <= length else { continue }
                var decoder = ChunkFrames.Decoder()
                chunks += decoder.decode(frame[...])
                offset = end
            }
        }
        guard offset == length else {
            throw ResumableStreamError.broker("the store holds \(offset) units of a stream whose length it gave as \(length)")
        }
        return chunks
    }

    /// The existence check with the stream's length. A stream that this process produces is
    /// answered from memory; a durable one from the store. A live stream of another process in
    /// memory mode is asked for its text, as a follower would, to count it.
    public func status(of streamId: String) async throws -> ResumableStreamStatus {
        try Self.validate(streamId)
        if let producer = localProducer(streamId), !producer.isLeaving {
            var failure: ResumableStreamError?
            if case .failed(let error)? = producer.buffer.outcome { failure = error }
            return ResumableStreamStatus(state: producer.hasStoredEnd ? .finished : .live, length: producer.buffer.length, failure: failure)
        }
        if let store = core.store {
            switch try await core.brokered({ try await store.inspect(core.wire.storedKeys(streamId), times: core.storedTimes) }) {
            case .live(let length):
                return ResumableStreamStatus(state: .live, length: length)
            case .none(sentinel: .live):
                return ResumableStreamStatus(state: .live, length: 0)
            case .none(let sentinel):
                // No log, or no longer: the sentinel says the rest, in the same answer.
                return ResumableStreamStatus(state: sentinel, length: nil)
            case .ended(let length, let outcome):
                var failure: ResumableStreamError?
                if case .failed(let error)? = StoredLog.decodeEnd(outcome).map({ StoredLog.named($0, streamId: streamId) }) {
                    failure = error
                }
                return ResumableStreamStatus(state: .finished, length: length, failure: failure)
            }
        }
        switch try await state(of: streamId) {
        case .none: return ResumableStreamStatus(state: .none, length: nil)
        case .finished: return ResumableStreamStatus(state: .finished, length: nil)
        case .live:
            // Memory mode, another process: its first answer is the whole text so far.
            guard case .stream(let reader) = try await follow(streamId, resumeAt: 0, viaStore: false) else {
                return ResumableStreamStatus(state: .finished, length: nil)
            }
            return ResumableStreamStatus(state: .live, length: reader.buffer.length)
        }
    }
}

/// A source whose first `units` offset units are dropped: what a continued ingest already stored.
struct DroppingUnits<Base: AsyncSequence>: AsyncSequence where Base.Element == String {
    typealias Element = String
    let base: Base
    let units: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var remaining: Int

        mutating func next() async throws -> String? {
            while let chunk = try await base.next() {
                guard remaining > 0 else { return chunk }
                let count = TextUnits.count(chunk)
                guard count > remaining else {
                    remaining -= count
                    continue
                }
                let rest = TextUnits.dropping(remaining, from: chunk[...])
                remaining = 0
                if !rest.isEmpty { return String(rest) }
            }
            return nil
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), remaining: units)
    }
}

extension DroppingUnits: Sendable where Base: Sendable {}
