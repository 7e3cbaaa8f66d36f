/// The names one durable stream uses: its log, its writer's lease, the mark of an ingest stream
/// that may be continued, the reference's sentinel, and the channel its new batches go out on.
public struct StoredStreamKeys: Sendable, Hashable {
    public let log: String
    public let writer: String
    public let ingest: String
    public let sentinel: String
    public let appendChannel: String
}

/// How long the keys of a durable stream live.
public struct StoredStreamTimes: Sendable, Hashable {
    /// The writer's lease: a writer that stops renewing it is gone after this long.
    public var leaseSeconds: Int
    /// How long a stream stays readable after its end, and after its last write while live.
    public var retentionSeconds: Int
    /// How long an ingest stream waits for a producer to continue it once its own has gone.
    public var ingestReattachSeconds: Int
    /// How long the `DONE` sentinel of an ended stream stays.
    public var doneExpirySeconds: Int
}

/// Where a durable stream is: the store answers every reader, whoever produces it and whether or
/// not its producer lives. One writer at a time holds a stream (its token fences every other).
///
/// ``RedisStreamBroker`` keeps streams in Redis (see ``StoredLog`` for the layout).
public protocol StreamStore: Sendable {
    /// Starts the log of a stream whose sentinel this process has just claimed, with `writer` as
    /// its writer. `false` when a log of that id is still there (its producer died unseen): that
    /// stream is ended as lost, and the id stays taken. `replacing` drops any log of that id first.
    func create(_ keys: StoredStreamKeys, writer: String, ingest: Bool, replacing: Bool, times: StoredStreamTimes) async throws -> Bool
    /// Stores whole chunks that start at `start` and end at `end` (one ``ChunkFrames`` message),
    /// and the end when `outcome` is given, then publishes them on the append channel, in one step.
    func append(
        _ keys: StoredStreamKeys,
        writer: String,
        start: Int,
        end: Int,
        frame: String?,
        outcome: String?,
        times: StoredStreamTimes
    ) async throws -> StoreAppend
    /// Renews the writer's lease, the sentinel's and the log's retention; `false` when the writer
    /// has been fenced off (the stream ended, or another writer holds it).
    func renew(_ keys: StoredStreamKeys, writer: String, ingest: Bool, times: StoredStreamTimes) async throws -> Bool
    /// The entries after `offset` (see ``StoredLog/readStart(from:)``), at most `count`, as id,
    /// field and value.
    func read(_ keys: StoredStreamKeys, after offset: Int, count: Int) async throws -> [(id: String, field: String, value: String)]
    /// The stream's state; a stream that nobody writes and nobody may continue is ended here as
    /// lost, at its stored length.
    func inspect(_ keys: StoredStreamKeys, times: StoredStreamTimes) async throws -> StoredState
    /// The ingest's producer has gone: the stream waits for another to continue it.
    func detach(_ keys: StoredStreamKeys, writer: String, times: StoredStreamTimes) async throws
    /// Ends a stream that no writer holds (an ingest that waits to be continued) as cancelled;
    /// `false` when a writer holds it, or it has ended, or there is none.
    func cancel(_ keys: StoredStreamKeys, times: StoredStreamTimes) async throws -> Bool
    /// Makes `writer` the writer of an ingest stream that waits for one, if `offset` is within it.
    func claim(_ keys: StoredStreamKeys, writer: String, offset: Int, times: StoredStreamTimes) async throws -> StoreClaim
}

public enum StoreAppend: Sendable, Equatable {
    case stored(length: Int)
    /// Another writer holds the stream.
    case fenced(length: Int)
    /// The stream has ended.
    case ended(length: Int)
    /// The store holds `length` units, not `start`: a write whose answer was lost, or a store that
    /// lost data.
    case elsewhere(length: Int)
}

public enum StoredState: Sendable, Equatable {
    /// No log; `sentinel` is what the reference's sentinel says (a live stream without a log is a
    /// reference instance's, or one whose log comes next).
    case none(sentinel: ResumableStreamState)
    case live(length: Int)
    /// `outcome` as ``StoredLog/encodeEnd(_:)`` writes it.
    case ended(length: Int, outcome: String)
}

public enum StoreClaim: Sendable, Equatable {
    case claimed(length: Int)
    case none
    case ended(length: Int)
    /// A producer writes it now.
    case busy(length: Int)
    case beyondLength(length: Int)
}
