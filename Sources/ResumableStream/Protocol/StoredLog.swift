/// How a durable stream is kept in the store, and what its producer publishes to the instances that
/// follow it. Values and pure functions, no I/O.
///
/// A stream is a Redis Stream (`P:rs:log:<id>`) whose entry ids are offsets in UTF-16 code units:
/// - `0-1`, written when the stream is created: the stream exists, nothing is stored yet;
/// - `<end>-1` for each batch of whole chunks, with the field `c` holding the batch as one
///   ``ChunkFrames`` message, `<end>` being the offset after its last chunk;
/// - `<length>-2`, the last entry, with the field `e` holding how the stream ended.
///
/// Readers from offset N ask for the entries after `N-1`: every batch that ends after N and the end
/// if it lies at N or later. The ids rise with the text, so Redis refuses a batch written twice.
enum StoredLog {
    static let createdEntryId = "0-1"
    static let chunksField = "c"
    static let endField = "e"

    static func chunksEntryId(end: Int) -> String { "\(end)-1" }
    static func endEntryId(length: Int) -> String { "\(length)-2" }
    /// The exclusive start of a read from `offset`.
    static func readStart(from offset: Int) -> String { "(\(offset)-1" }

    enum Entry: Equatable, Sendable {
        case created
        /// Whole chunks that end at `end`.
        case chunks(String, end: Int)
        case end(StreamBuffer.Outcome, length: Int)
    }

    /// An entry read back: its id and its one field. `nil` for anything this project does not write.
    static func entry(id: String, field: String, value: String) -> Entry? {
        let parts = id.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let offset = Int(parts[0]), offset >= 0 else { return nil }
        switch (parts[1], field) {
        case ("1", _) where offset == 0: return .created
        case ("1", chunksField): return .chunks(value, end: offset)
        case ("2", endField): return decodeEnd(value).map { .end($0, length: offset) }
        default: return nil
        }
    }

    // MARK: - Ends

    /// How a stream ended, as stored: readers of any instance end the same way, with the same code.
    static func encodeEnd(_ outcome: StreamBuffer.Outcome) -> String {
        switch outcome {
        case .completed: return "completed"
        case .failed(.cancelled): return "cancelled"
        case .failed(.producerLost): return "producer_lost"
        case .failed(.sourceFailed(let reason)): return "failed:" + reason
        case .failed(let error): return "failed:" + error.description
        }
    }

    /// The stored end of a lost producer names no stream: its reader, which knows it, does.
    static func named(_ outcome: StreamBuffer.Outcome, streamId: String) -> StreamBuffer.Outcome {
        outcome == .failed(.producerLost(streamId: "")) ? .failed(.producerLost(streamId: streamId)) : outcome
    }

    static func decodeEnd(_ text: String) -> StreamBuffer.Outcome? {
        switch text {
        case "completed": return .completed
        case "cancelled": return .failed(.cancelled)
        // The stream's own id is filled in by the reader, which knows it.
        case "producer_lost": return .failed(.producerLost(streamId: ""))
        default:
            guard text.hasPrefix("failed:") else { return nil }
            return .failed(.sourceFailed(String(text.dropFirst("failed:".count))))
        }
    }

    // MARK: - Messages to followers

    /// What a producer publishes on the stream's append channel, after the store has it.
    enum Message: Equatable, Sendable {
        /// A batch of whole chunks that starts at `start`.
        case chunks(Substring, start: Int)
        case end(StreamBuffer.Outcome, length: Int)
    }

    static func encode(chunks frame: String, start: Int) -> String { "c\(start)\n" + frame }
    static func encode(end outcome: StreamBuffer.Outcome, length: Int) -> String { "e\(length)\n" + encodeEnd(outcome) }

    static func decode(_ message: String) -> Message? {
        guard let kind = message.first, let newline = message.firstIndex(of: "\n") else { return nil }
        guard let offset = Int(message[message.index(after: message.startIndex)..<newline]), offset >= 0 else { return nil }
        let body = message[message.index(after: newline)...]
        switch kind {
        case "c": return .chunks(body, start: offset)
        case "e": return decodeEnd(String(body)).map { .end($0, length: offset) }
        default: return nil
        }
    }

    // MARK: - Fitting what arrives to what a follower has

    enum Fit: Equatable {
        /// Append these chunks (those that end at or before the follower's length are dropped).
        case append([Substring])
        /// The chunks begin after what the follower has: read the store from its length.
        case gap
        /// A chunk runs across the follower's length: the text is not the one it has.
        case mismatch
    }

    /// Whole chunks that start at `start`, against a follower that has `length` units: batches may
    /// overlap what it has (after a reconnection, or a store read that raced a message), and are
    /// cut at chunk boundaries.
    static func fit(_ chunks: [Substring], start: Int, length: Int) -> Fit {
        guard start <= length else { return .gap }
        var offset = start
        var index = chunks.startIndex
        while index < chunks.endIndex, offset < length {
            offset += TextUnits.count(chunks[index])
            index += 1
        }
        if offset > length { return .mismatch }
        return .append(Array(chunks[index...]))
    }
}
