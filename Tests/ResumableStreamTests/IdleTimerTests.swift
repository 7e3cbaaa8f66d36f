import NIOCore
import NIOPosix
@testable import ResumableStream
import Testing

@Suite(.timeLimit(.minutes(1)))
struct IdleTimerTests {
    private let loop = MultiThreadedEventLoopGroup.singleton.any()

    /// A reader that waits for the interval is told so, again after each interval, and reads
    /// what comes between.
    @Test func aWaitingReaderIsToldItIsIdleAfterEachInterval() async throws {
        let buffer = StreamBuffer(limit: 1 << 20, budget: MemoryBudget(limit: 1 << 20))
        let reader = ResumableStreamReader(buffer: buffer, startOffset: 0, lease: nil)
        var iterator = reader.makeAsyncIterator()
        let timer = IdleTimer(interval: .milliseconds(50), on: loop)
        defer { timer.cancel() }
        #expect(try await iterator.next(maximumBytes: 1_024, idleTimer: timer) == .idle)
        try buffer.append("a")
        try buffer.append("b")
        #expect(try await iterator.next(maximumBytes: 1_024, idleTimer: timer) == .chunks([
            ResumableStreamChunk(text: "a", offset: 1), ResumableStreamChunk(text: "b", offset: 2),
        ]))
        #expect(try await iterator.next(maximumBytes: 1_024, idleTimer: timer) == .idle)
        #expect(try await iterator.next(maximumBytes: 1_024, idleTimer: timer) == .idle)
        buffer.finish(.completed)
        #expect(try await iterator.next(maximumBytes: 1_024, idleTimer: timer) == nil)
    }

    /// A cancelled timer wakes nobody: the reader waits for its text.
    @Test func aCancelledTimerWakesNobody() async throws {
        let buffer = StreamBuffer(limit: 1 << 20, budget: MemoryBudget(limit: 1 << 20))
        let reader = ResumableStreamReader(buffer: buffer, startOffset: 0, lease: nil)
        let timer = IdleTimer(interval: .milliseconds(10), on: loop)
        timer.cancel()
        let read = Task {
            var iterator = reader.makeAsyncIterator()
            return try await iterator.next(maximumBytes: 1_024, idleTimer: timer)
        }
        // Well past the interval, on the timer's own loop: had it fired, the read would be over.
        try await loop.scheduleTask(in: .milliseconds(100)) {}.futureResult.get()
        try buffer.append("text")
        #expect(try await read.value == .chunks([ResumableStreamChunk(text: "text", offset: 4)]))
    }
}
