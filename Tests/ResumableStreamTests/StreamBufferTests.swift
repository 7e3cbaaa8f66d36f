@testable import ResumableStream
import Testing

@Suite(.timeLimit(.minutes(1)))
struct StreamBufferTests {
    private func makeBuffer(limit: Int = 1 << 30, budget: MemoryBudget = MemoryBudget(limit: 1 << 30)) -> StreamBuffer {
        StreamBuffer(limit: limit, budget: budget)
    }

    private func makeBuffer(_ chunks: String..., finished: Bool = false) throws -> StreamBuffer {
        let buffer = makeBuffer()
        for chunk in chunks {
            try buffer.append(chunk)
        }
        if finished {
            buffer.finish(.completed)
        }
        return buffer
    }

    // MARK: reading what is there

    @Test func emptyLiveBufferHasNothingToRead() {
        #expect(makeBuffer().readNow(at: 0) == nil)
    }

    @Test func emptyFinishedBufferEnds() {
        let buffer = makeBuffer()
        buffer.finish(.completed)
        #expect(buffer.readNow(at: 0) == .end(.completed))
    }

    @Test func readsTheAppendedChunks() throws {
        let buffer = try makeBuffer("ab", "cd")
        #expect(buffer.readNow(at: 0)?.pieces == ["ab", "cd"])
        #expect(buffer.length == 4)
        #expect(buffer.bytes == 4)
    }

    @Test func offsetAtAChunkBoundaryStartsAtThatChunk() throws {
        let buffer = try makeBuffer("ab", "cd", "ef")
        #expect(buffer.readNow(at: 2)?.pieces == ["cd", "ef"])
        #expect(buffer.readNow(at: 4)?.pieces == ["ef"])
    }

    @Test func offsetInsideAChunkStartsWithItsSuffix() throws {
        let buffer = try makeBuffer("abc", "def")
        #expect(buffer.readNow(at: 1)?.pieces == ["bc", "def"])
        #expect(buffer.readNow(at: 4)?.pieces == ["ef"])
    }

    @Test func offsetsCountUTF16UnitsOfMultiByteText() throws {
        let buffer = try makeBuffer("héllo", "w€rld🌍!")
        #expect(buffer.length == 5 + 8)
        #expect(buffer.readNow(at: 2)?.pieces == ["llo", "w€rld🌍!"])
        #expect(buffer.readNow(at: 7)?.pieces == ["rld🌍!"])
        #expect(buffer.readNow(at: 12)?.pieces == ["!"])
    }

    @Test func maximumChunksLimitsTheChunksOfARead() throws {
        let buffer = try makeBuffer("ab", "cd", "ef")
        #expect(buffer.readNow(at: 0, maximumChunks: 1)?.pieces == ["ab"])
        #expect(buffer.readNow(at: 1, maximumChunks: 2)?.pieces == ["b", "cd"])
    }

    @Test func maximumBytesCoalescesWholeChunksUpToTheLimit() throws {
        let buffer = try makeBuffer("ab", "cd", "ef")
        #expect(buffer.readNow(at: 0, maximumBytes: 4)?.pieces == ["ab", "cd"])
        #expect(buffer.readNow(at: 0, maximumBytes: 5)?.pieces == ["ab", "cd"])
        #expect(buffer.readNow(at: 0, maximumBytes: 3)?.pieces == ["ab"])
    }

    @Test func maximumBytesCountsTheSuffixOfTheFirstChunk() throws {
        let buffer = try makeBuffer("abc", "de", "f")
        #expect(buffer.readNow(at: 2, maximumBytes: 3)?.pieces == ["c", "de"])
    }

    @Test func maximumBytesCountsUTF8Bytes() throws {
        let buffer = try makeBuffer("a", "é", "🌍")
        #expect(buffer.readNow(at: 0, maximumBytes: 3)?.pieces == ["a", "é"])
        #expect(buffer.readNow(at: 0, maximumBytes: 6)?.pieces == ["a", "é"])
        #expect(buffer.readNow(at: 0, maximumBytes: 7)?.pieces == ["a", "é", "🌍"])
    }

    @Test func aFirstChunkLargerThanMaximumBytesIsStillRead() throws {
        let buffer = try makeBuffer("abcdef", "g")
        #expect(buffer.readNow(at: 0, maximumBytes: 2)?.pieces == ["abcdef"])
    }

    // MARK: the end

    @Test func offsetAtTheEndOfALiveBufferMustWait() throws {
        let buffer = try makeBuffer("abc")
        #expect(buffer.readNow(at: 3) == nil)
        #expect(buffer.readNow(at: 10) == nil)
    }

    @Test func offsetAtTheEndOfAFinishedBufferEnds() throws {
        let buffer = try makeBuffer("abc", finished: true)
        #expect(buffer.readNow(at: 3) == .end(.completed))
    }

    @Test func offsetPastTheEndOfAFinishedBufferFails() throws {
        let buffer = try makeBuffer("abc", finished: true)
        #expect(buffer.readNow(at: 4) == .end(.failed(.offsetBeyondEnd(offset: 4, length: 3))))
    }

    @Test func offsetPastTheEndOfAFailedBufferSeesTheFailure() throws {
        let buffer = try makeBuffer("abc")
        buffer.finish(.failed(.cancelled))
        #expect(buffer.readNow(at: 3) == .end(.failed(.cancelled)))
        #expect(buffer.readNow(at: 9) == .end(.failed(.cancelled)))
    }

    @Test func finishedBufferStillReadsItsText() throws {
        let buffer = try makeBuffer("abc", finished: true)
        #expect(buffer.readNow(at: 1)?.pieces == ["bc"])
    }

    @Test func onlyTheFirstFinishCounts() {
        let buffer = makeBuffer()
        buffer.finish(.failed(.cancelled))
        buffer.finish(.completed)
        #expect(buffer.outcome == .failed(.cancelled))
    }

    @Test func appendAfterFinishIsIgnored() throws {
        let buffer = try makeBuffer("abc", finished: true)
        try buffer.append("def")
        #expect(buffer.length == 3)
        #expect(buffer.readNow(at: 3) == .end(.completed))
    }

    // MARK: empty chunks

    @Test func emptyChunksAreSkippedAtAnOffset() throws {
        let buffer = try makeBuffer("a", "", "", "b")
        #expect(buffer.readNow(at: 1, maximumChunks: 1)?.pieces == ["b"])
    }

    @Test func aReaderNeverSeesAnEmptyChunk() async throws {
        let buffer = try makeBuffer("", "a", "", "b", "", finished: true)
        let texts = try await collect(ResumableStreamReader(buffer: buffer, startOffset: 0, lease: nil))
        #expect(texts == ["a", "b"])
    }

    @Test func emptyChunksAtTheEndOfALiveBufferLeaveNothingToRead() throws {
        let buffer = try makeBuffer("a", "")
        #expect(buffer.readNow(at: 1) == nil)
    }

    // MARK: waiting

    @Test func waitingReadIsWokenByAppend() async throws {
        let buffer = try makeBuffer("ab")
        let reader = await startedTask { try await buffer.read(at: 2) }
        try buffer.append("cd")
        #expect(try await reader.value.pieces == ["cd"])
    }

    @Test func waitingReadWithAsyncLetIsWokenByAppend() async throws {
        let buffer = makeBuffer()
        async let read = buffer.read(at: 0)
        try buffer.append("x")
        #expect(try await read.pieces == ["x"])
    }

    @Test func waitingReadIsWokenByFinish() async throws {
        let buffer = try makeBuffer("ab")
        let reader = await startedTask { try await buffer.read(at: 2) }
        buffer.finish(.completed)
        #expect(try await reader.value == .end(.completed))
    }

    @Test func waitingReadPastTheEndFailsWhenTheBufferFinishes() async throws {
        let buffer = try makeBuffer("ab")
        let reader = await startedTask { try await buffer.read(at: 5) }
        buffer.finish(.completed)
        #expect(try await reader.value == .end(.failed(.offsetBeyondEnd(offset: 5, length: 2))))
    }

    @Test func waitingReadKeepsWaitingUntilItsOffsetIsReached() async throws {
        let buffer = makeBuffer()
        let reader = await startedTask { try await buffer.read(at: 3) }
        try buffer.append("a")
        try buffer.append("")
        try buffer.append("bc")
        try buffer.append("de")
        #expect(try await reader.value.pieces == ["de"])
    }

    @Test func cancelledWaitingReadThrowsCancellationError() async throws {
        let buffer = makeBuffer()
        let reader = await startedTask { try await buffer.read(at: 0) }
        reader.cancel()
        await #expect(throws: CancellationError.self) {
            try await reader.value
        }
    }

    @Test func cancelledWaitingReadDoesNotKeepItsWaiter() async throws {
        let buffer = makeBuffer()
        let reader = await startedTask { try await buffer.read(at: 0) }
        reader.cancel()
        _ = try? await reader.value
        // A waiter left behind would be resumed a second time here, which traps.
        try buffer.append("x")
        buffer.finish(.completed)
        #expect(try await buffer.read(at: 0).pieces == ["x"])
    }

    @Test func readInACancelledTaskThrowsEvenWhenTextIsThere() async throws {
        let buffer = try makeBuffer("abc")
        let reader = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await buffer.read(at: 0)
        }
        await #expect(throws: CancellationError.self) {
            try await reader.value
        }
    }

    @Test func thousandWaitingReadersAllGetTheNextChunk() async throws {
        let buffer = try makeBuffer("abc")
        let count = 1000
        let (started, starting) = AsyncStream.makeStream(of: Void.self)
        let reads = try await withThrowingTaskGroup(of: StreamBuffer.Read.self) { group in
            for _ in 0..<count {
                group.addTask {
                    starting.yield()
                    return try await buffer.read(at: 3)
                }
            }
            var ready = 0
            for await _ in started {
                ready += 1
                if ready == count { break }
            }
            try buffer.append("d")
            var reads: [StreamBuffer.Read] = []
            for try await read in group {
                reads.append(read)
            }
            return reads
        }
        #expect(reads.count == count)
        #expect(reads.allSatisfy { $0.pieces == ["d"] })
    }

    // MARK: limits

    @Test func appendPastTheStreamLimitThrows() throws {
        let buffer = makeBuffer(limit: 5)
        try buffer.append("abc")
        #expect(throws: ResumableStreamError.streamBufferLimitExceeded(limit: 5)) {
            try buffer.append("def")
        }
        #expect(buffer.outcome == .failed(.streamBufferLimitExceeded(limit: 5)))
    }

    @Test func theStreamLimitCountsUTF8Bytes() throws {
        // Two UTF-16 units, but five bytes.
        let buffer = makeBuffer(limit: 4)
        #expect(throws: ResumableStreamError.streamBufferLimitExceeded(limit: 4)) {
            try buffer.append("é€")
        }
    }

    @Test func aChunkThatFillsTheStreamLimitExactlyFits() throws {
        let buffer = makeBuffer(limit: 5)
        try buffer.append("é€")
        #expect(buffer.bytes == 5)
        #expect(buffer.outcome == nil)
    }

    @Test func readersSeeTheLimitFailureAfterTheBufferedText() async throws {
        let buffer = makeBuffer(limit: 5)
        try buffer.append("abc")
        _ = try? buffer.append("def")
        #expect(buffer.readNow(at: 0)?.pieces == ["abc"])
        #expect(buffer.readNow(at: 3) == .end(.failed(.streamBufferLimitExceeded(limit: 5))))
        let reader = ResumableStreamReader(buffer: buffer, startOffset: 0, lease: nil)
        var iterator = reader.makeAsyncIterator()
        #expect(try await iterator.next()?.text == "abc")
        await #expect(throws: ResumableStreamError.streamBufferLimitExceeded(limit: 5)) {
            _ = try await iterator.next()
        }
    }

    @Test func waitingReaderIsWokenByTheLimitFailure() async throws {
        let buffer = makeBuffer(limit: 3)
        try buffer.append("abc")
        let reader = await startedTask { try await buffer.read(at: 3) }
        _ = try? buffer.append("d")
        #expect(try await reader.value == .end(.failed(.streamBufferLimitExceeded(limit: 3))))
    }

    @Test func buffersSharingABudgetFailWhenItIsSpent() throws {
        let budget = MemoryBudget(limit: 10)
        let first = makeBuffer(budget: budget)
        let second = makeBuffer(budget: budget)
        try first.append("123456")
        #expect(budget.bytesInUse == 6)
        #expect(throws: ResumableStreamError.processBufferLimitExceeded(limit: 10)) {
            try second.append("12345")
        }
        #expect(second.outcome == .failed(.processBufferLimitExceeded(limit: 10)))
        #expect(budget.bytesInUse == 6)
    }

    @Test func releaseReturnsTheBytesToTheBudgetOnce() throws {
        let budget = MemoryBudget(limit: 100)
        let first = makeBuffer(budget: budget)
        let second = makeBuffer(budget: budget)
        try first.append("abc")
        try second.append("defgh")
        #expect(budget.bytesInUse == 8)
        first.release()
        #expect(budget.bytesInUse == 5)
        first.release()
        #expect(budget.bytesInUse == 5)
    }

    @Test func releasedBytesCanBeTakenByAnotherBuffer() throws {
        let budget = MemoryBudget(limit: 4)
        let first = makeBuffer(budget: budget)
        try first.append("abcd")
        first.release()
        let second = makeBuffer(budget: budget)
        try second.append("efgh")
        #expect(budget.bytesInUse == 4)
    }

    @Test func releasedBufferStaysReadable() throws {
        let buffer = try makeBuffer("abc", finished: true)
        buffer.release()
        #expect(buffer.readNow(at: 0)?.pieces == ["abc"])
    }

    // MARK: many chunks

    @Test func randomChunksReadFromEveryBoundaryAndRandomOffsets() throws {
        var random = SeededRandom(seed: 0x5eed)
        let alphabet: [String] = ["a", "b", "Z", " ", "é", "€", "🌍", "e\u{301}", "\n"]
        let buffer = makeBuffer()
        var chunks: [String] = []
        for _ in 0..<10_000 {
            let length = Int.random(in: 0...6, using: &random)
            let chunk = (0..<length).map { _ in alphabet.randomElement(using: &random)! }.joined()
            chunks.append(chunk)
            try buffer.append(chunk)
        }
        buffer.finish(.completed)
        let oracle = Oracle(chunks.joined())
        #expect(buffer.length == oracle.length)

        // From every boundary, the next non-empty chunk comes whole.
        var boundary = 0
        for (index, chunk) in chunks.enumerated() {
            if let next = chunks[index...].first(where: { !$0.isEmpty }) {
                #expect(buffer.readNow(at: boundary, maximumChunks: 1)?.pieces == ([next[...]]))
            }
            boundary += TextUnits.count(chunk)
        }
        #expect(buffer.readNow(at: boundary) == .end(.completed))

        // From random offsets, also inside a surrogate pair, the exact suffix.
        for _ in 0..<300 {
            let offset = Int.random(in: 0..<oracle.length, using: &random)
            guard case .text(let pieces, _) = buffer.readNow(at: offset) else {
                Issue.record("no text at \(offset)")
                continue
            }
            #expect(Array(pieces.joined().unicodeScalars) == oracle.scalars(from: offset))
        }
    }

    @Test func cursorOverRandomChunksReconstructsTheText() async throws {
        var random = SeededRandom(seed: 42)
        let alphabet: [String] = ["x", "y", "é", "€", "e\u{301}"]
        let buffer = makeBuffer()
        var chunks: [String] = []
        for _ in 0..<2_000 {
            let chunk = (0..<Int.random(in: 0...5, using: &random)).map { _ in alphabet.randomElement(using: &random)! }.joined()
            chunks.append(chunk)
            try buffer.append(chunk)
        }
        buffer.finish(.completed)
        var offset = 0
        var text = ""
        while case .text(let pieces, _) = try await buffer.read(at: offset, maximumBytes: 64) {
            for piece in pieces {
                text += piece
                offset += TextUnits.count(piece)
            }
        }
        #expect(text == chunks.joined())
    }

    // MARK: a reader's cursor

    @Test func readerChunksCarryTheOffsetAfterThem() async throws {
        let buffer = try makeBuffer("hé", "🌍!", finished: true)
        let reader = ResumableStreamReader(buffer: buffer, startOffset: 1, lease: nil)
        var chunks: [ResumableStreamChunk] = []
        for try await chunk in reader {
            chunks.append(chunk)
        }
        #expect(chunks == [
            ResumableStreamChunk(text: "é", offset: 2),
            ResumableStreamChunk(text: "🌍!", offset: 5),
        ])
    }

    /// The buffer moves an offset inside a surrogate pair forward past the pair, but the reader
    /// advances its cursor by the length of what it got, which leaves it one unit short.
    @Test func readerStartingInsideASurrogatePairDoesNotRepeatText() async throws {
        let buffer = try makeBuffer("🌍x", "y", finished: true)
        let reader = ResumableStreamReader(buffer: buffer, startOffset: 1, lease: nil)
        let texts = try await collect(reader, atMost: 10)
        #expect(texts.joined() == "xy")
    }

    @Test func readerStartingInsideASurrogatePairAtTheEndOfAChunkMakesProgress() async throws {
        let buffer = try makeBuffer("🌍", "y", finished: true)
        let reader = ResumableStreamReader(buffer: buffer, startOffset: 1, lease: nil)
        let texts = try await collect(reader, atMost: 10)
        #expect(texts == ["y"])
    }

    /// `resumeAt` reaches the reader unchecked; a negative one must not repeat text.
    @Test func readerStartingAtANegativeOffsetDoesNotRepeatText() async throws {
        let buffer = try makeBuffer("abc", finished: true)
        let reader = ResumableStreamReader(buffer: buffer, startOffset: -1, lease: nil)
        let texts = try await collect(reader, atMost: 10)
        #expect(texts.joined() == "abc")
    }

    /// Run in a child process: a trap there fails this test instead of killing the test run.
    @Test func readAtANegativeOffsetOfAnEmptyBufferDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            let buffer = StreamBuffer(limit: 10, budget: MemoryBudget(limit: 10))
            _ = buffer.readNow(at: -1)
        }
    }

    private func collect(_ reader: ResumableStreamReader, atMost limit: Int = 1000) async throws -> [String] {
        var texts: [String] = []
        var iterator = reader.makeAsyncIterator()
        while texts.count < limit, let chunk = try await iterator.next() {
            texts.append(chunk.text)
        }
        return texts
    }
}

// MARK: - OneShot

extension StreamBufferTests {
    @Suite(.timeLimit(.minutes(1)))
    struct OneShotTests {
        @Test func setWakesEveryWaiter() async {
            let shot = OneShot<Int>()
            let (started, starting) = AsyncStream.makeStream(of: Void.self)
            let values = await withTaskGroup(of: Int?.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        starting.yield()
                        return await shot.wait()
                    }
                }
                var ready = 0
                for await _ in started {
                    ready += 1
                    if ready == 50 { break }
                }
                #expect(shot.set(7))
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(values == Array(repeating: 7, count: 50))
        }

        @Test func secondSetKeepsTheFirstValue() async {
            let shot = OneShot<String>()
            #expect(shot.set("first"))
            #expect(!shot.set("second"))
            #expect(shot.currentValue == "first")
            #expect(await shot.wait() == "first")
        }

        @Test func waitWithTimeoutIsNilWhenNeverSet() async {
            let shot = OneShot<Int>()
            #expect(await shot.wait(timeout: .milliseconds(20)) == nil)
        }

        @Test func waitWithTimeoutReturnsAValueSetBefore() async {
            let shot = OneShot<Int>()
            shot.set(3)
            #expect(await shot.wait(timeout: .seconds(30)) == 3)
        }

        @Test func waitWithTimeoutReturnsAValueSetDuring() async {
            let shot = OneShot<Int>()
            let waiter = await startedTask { await shot.wait(timeout: .seconds(30)) }
            shot.set(4)
            #expect(await waiter.value == 4)
        }

        @Test func cancelledWaitReturnsNil() async {
            let shot = OneShot<Int>()
            let waiter = await startedTask { await shot.wait() }
            waiter.cancel()
            #expect(await waiter.value == nil)
            // The cancelled waiter is gone: setting does not resume it a second time.
            #expect(shot.set(1))
        }
    }
}

// MARK: - helpers

/// Fires once; `wait` returns once it has fired. For a test to know that a task has started.
/// Starts `body` in a task and returns once the task is running, so that the test acts on a
/// reader that is already waiting (or about to).
private func startedTask<Value: Sendable>(_ body: @escaping @Sendable () async throws -> Value) async -> Task<Value, any Error> {
    let started = Signal()
    let task = Task {
        started.fire()
        return try await body()
    }
    await started.wait()
    return task
}

private func startedTask<Value: Sendable>(_ body: @escaping @Sendable () async -> Value) async -> Task<Value, Never> {
    let started = Signal()
    let task = Task {
        started.fire()
        return await body()
    }
    await started.wait()
    return task
}

private final class Signal: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Void.self)
    }

    func fire() {
        continuation.yield()
        continuation.finish()
    }

    func wait() async {
        for await _ in stream {}
    }
}

/// The text as UTF-16 offsets and scalars, to compute the expected suffix independently of
/// `TextUnits`: a suffix starts with the first scalar that begins at or after the offset.
private struct Oracle {
    let scalars: [Unicode.Scalar]
    let starts: [Int]
    let length: Int

    init(_ text: String) {
        var scalars: [Unicode.Scalar] = []
        var starts: [Int] = []
        var offset = 0
        for scalar in text.unicodeScalars {
            scalars.append(scalar)
            starts.append(offset)
            offset += scalar.value > 0xFFFF ? 2 : 1
        }
        self.scalars = scalars
        self.starts = starts
        self.length = offset
    }

    func scalars(from offset: Int) -> [Unicode.Scalar] {
        guard let first = starts.firstIndex(where: { $0 >= offset }) else { return [] }
        return Array(scalars[first...])
    }
}
