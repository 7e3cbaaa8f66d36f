@testable import ResumableStream
import Testing

/// The layout of durable streams and the follower's bookkeeping, as pure logic.
struct StoredLogTests {
    @Test func entriesAreReadBackByTheirIds() {
        #expect(StoredLog.entry(id: "0-1", field: "c", value: "") == .created)
        #expect(StoredLog.entry(id: "12-1", field: "c", value: "hello") == .chunks("hello", end: 12))
        #expect(StoredLog.entry(id: "12-2", field: "e", value: "completed") == .end(.completed, length: 12))
        #expect(StoredLog.entry(id: "0-2", field: "e", value: "cancelled") == .end(.failed(.cancelled), length: 0))
        // Anything this project does not write is skipped, not misread.
        for (id, field, value) in [("12-3", "c", "x"), ("12-1", "x", "x"), ("12-2", "c", "x"), ("-1-1", "c", "x"), ("a-1", "c", "x"), ("12", "c", "x"), ("12-2", "e", "nonsense")] {
            #expect(StoredLog.entry(id: id, field: field, value: value) == nil, "\(id) \(field) \(value)")
        }
    }

    @Test func theIdsOfAReadLeaveOutWhatTheReaderHasAndKeepAnEndAtItsOffset() {
        // XRANGE from the exclusive `(N-1`: the batch that ends at N (`N-1`) is left out, the end
        // at N (`N-2`) and every later batch are in.
        #expect(StoredLog.readStart(from: 40) == "(40-1")
        #expect(StoredLog.chunksEntryId(end: 40) == "40-1")
        #expect(StoredLog.endEntryId(length: 40) == "40-2")
    }

    @Test(arguments: [
        StreamBuffer.Outcome.completed,
        .failed(.cancelled),
        .failed(.producerLost(streamId: "")),
        .failed(.sourceFailed("the model timed out: 504")),
    ])
    func endsSurviveTheStore(_ outcome: StreamBuffer.Outcome) {
        #expect(StoredLog.decodeEnd(StoredLog.encodeEnd(outcome)) == outcome)
        #expect(StoredLog.decode(StoredLog.encode(end: outcome, length: 7)) == .end(outcome, length: 7))
    }

    @Test func otherFailuresAreStoredWithTheirWords() {
        let stored = StoredLog.encodeEnd(.failed(.streamBufferLimitExceeded(limit: 10)))
        #expect(StoredLog.decodeEnd(stored) == .failed(.sourceFailed(ResumableStreamError.streamBufferLimitExceeded(limit: 10).description)))
    }

    @Test func batchMessagesCarryTheirStart() {
        let frame = ChunkFrames.encode(["a", "é\n", "🌍"], maximumBytes: 1_000)[0]
        let message = StoredLog.encode(chunks: frame, start: 1_234)
        guard case .chunks(let body, let start)? = StoredLog.decode(message) else {
            Issue.record("not a batch: \(message.debugDescription)")
            return
        }
        #expect(start == 1_234)
        var decoder = ChunkFrames.Decoder()
        #expect(decoder.decode(body) == ["a", "é\n", "🌍"])
        for malformed in ["", "c12", "x1\nabc", "c-1\nabc", "cx\nabc", "e3\nnot an end"] {
            #expect(StoredLog.decode(malformed) == nil, "\(malformed.debugDescription)")
        }
    }

    @Test func aBatchIsFittedToWhatTheFollowerHas() {
        // "ab" 2 units, "🌍" 2 units, "c" 1 unit: boundaries at 2, 4 and 5 from a start of 10.
        let chunks: [Substring] = ["ab", "🌍", "c"]
        #expect(StoredLog.fit(chunks, start: 10, length: 10) == .append(chunks))
        #expect(StoredLog.fit(chunks, start: 10, length: 12) == .append(["🌍", "c"]))
        #expect(StoredLog.fit(chunks, start: 10, length: 14) == .append(["c"]))
        #expect(StoredLog.fit(chunks, start: 10, length: 15) == .append([]))
        #expect(StoredLog.fit(chunks, start: 10, length: 99) == .append([]))
        // What it misses comes first from the store.
        #expect(StoredLog.fit(chunks, start: 10, length: 9) == .gap)
        // A boundary that is not the source's: not the text the follower has.
        #expect(StoredLog.fit(chunks, start: 10, length: 11) == .mismatch)
        #expect(StoredLog.fit(chunks, start: 10, length: 13) == .mismatch)
    }

    @Test func aContinuedIngestDropsWhatWasStoredAlready() async throws {
        let body = AsyncStream<String> { continuation in
            for piece in ["ab", "c🌍d", "", "ef"] { continuation.yield(piece) }
            continuation.finish()
        }
        // Four units stored: "ab", "c", and the emoji's two.
        var pieces: [String] = []
        for try await piece in DroppingUnits(base: body, units: 5) { pieces.append(piece) }
        // An empty piece passes through: the producer skips it.
        #expect(pieces == ["d", "", "ef"])
        var all: [String] = []
        let again = AsyncStream<String> { continuation in
            continuation.yield("xyz")
            continuation.finish()
        }
        for try await piece in DroppingUnits(base: again, units: 0) { all.append(piece) }
        #expect(all == ["xyz"])
    }
}
