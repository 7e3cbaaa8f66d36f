import NIOCore
import NIOEmbedded
import NIOPosix
@testable import ResumableStream
import Synchronization
import Testing

/// Readers that are told on their event loop instead of waiting in a task: what a poll finds, and
/// when an observer is told.
@Suite(.timeLimit(.minutes(1)))
struct StreamObserverTests {
    /// Counts what it is told, and checks it is told on its loop.
    final class Observer: ResumableStreamObserver {
        let eventLoop: any EventLoop
        private let told = Mutex<(count: Int, offLoop: Int)>((0, 0))

        init(_ eventLoop: any EventLoop) {
            self.eventLoop = eventLoop
        }

        var count: Int { told.withLock { $0.count } }
        var offLoop: Int { told.withLock { $0.offLoop } }

        func streamChanged() {
            let onLoop = eventLoop.inEventLoop
            told.withLock {
                $0.count += 1
                if !onLoop { $0.offLoop += 1 }
            }
        }
    }

    private func makeBuffer(_ chunks: String...) throws -> StreamBuffer {
        let buffer = StreamBuffer(limit: 1 << 30, budget: MemoryBudget(limit: 1 << 30))
        for chunk in chunks {
            try buffer.append(chunk)
        }
        return buffer
    }

    // MARK: what a poll finds

    @Test func aPollTakesTheChunksWithTheOffsetAfterEach() throws {
        let buffer = try makeBuffer("ab", "cd", "ef")
        let observer = Observer(EmbeddedEventLoop())
        #expect(buffer.poll(at: 0, maximumBytes: 100, notifying: observer) == .chunks([
            ResumableStreamChunk(text: "ab", offset: 2),
            ResumableStreamChunk(text: "cd", offset: 4),
            ResumableStreamChunk(text: "ef", offset: 6),
        ]))
    }

    @Test func aPollInsideAChunkStartsWithItsSuffixThenWholeChunks() throws {
        let buffer = try makeBuffer("abc", "de")
        let observer = Observer(EmbeddedEventLoop())
        #expect(buffer.poll(at: 1, maximumBytes: 100, notifying: observer) == .chunks([
            ResumableStreamChunk(text: "bc", offset: 3),
            ResumableStreamChunk(text: "de", offset: 5),
        ]))
    }

    @Test func aPollTakesWholeChunksUpToMaximumBytesAndAtLeastOne() throws {
        let buffer = try makeBuffer("abcd", "ef", "gh")
        let observer = Observer(EmbeddedEventLoop())
        #expect(buffer.poll(at: 0, maximumBytes: 2, notifying: observer) == .chunks([ResumableStreamChunk(text: "abcd", offset: 4)]))
        #expect(buffer.poll(at: 0, maximumBytes: 6, notifying: observer) == .chunks([
            ResumableStreamChunk(text: "abcd", offset: 4),
            ResumableStreamChunk(text: "ef", offset: 6),
        ]))
    }

    @Test func aPollAtTheEndSeesHowTheStreamEnded() throws {
        let completed = try makeBuffer("ab")
        completed.finish(.completed)
        let cancelled = try makeBuffer("ab")
        cancelled.finish(.failed(.cancelled))
        let observer = Observer(EmbeddedEventLoop())
        #expect(completed.poll(at: 2, maximumBytes: 100, notifying: observer) == .completed)
        #expect(completed.poll(at: 3, maximumBytes: 100, notifying: observer) == .failed(.offsetBeyondEnd(offset: 3, length: 2)))
        #expect(cancelled.poll(at: 2, maximumBytes: 100, notifying: observer) == .failed(.cancelled))
    }

    // MARK: when an observer is told

    @Test func anObserverWithNothingToReadIsToldOnItsLoopWhenTextComes() throws {
        let loop = EmbeddedEventLoop()
        let buffer = try makeBuffer("ab")
        let observer = Observer(loop)
        #expect(buffer.poll(at: 2, maximumBytes: 100, notifying: observer) == nil)
        try buffer.append("cd")
        #expect(observer.count == 0, "told in a job of its loop, not in the appender's call")
        loop.run()
        #expect(observer.count == 1)
        #expect(observer.offLoop == 0)
        // Told once per registration: a second chunk before the next poll tells it nothing more.
        try buffer.append("ef")
        loop.run()
        #expect(observer.count == 1)
    }

    @Test func anObserverIsToldWhenTheStreamEnds() throws {
        let loop = EmbeddedEventLoop()
        let buffer = try makeBuffer()
        let observer = Observer(loop)
        #expect(buffer.poll(at: 0, maximumBytes: 100, notifying: observer) == nil)
        buffer.finish(.failed(.cancelled))
        loop.run()
        #expect(observer.count == 1)
        #expect(buffer.poll(at: 0, maximumBytes: 100, notifying: observer) == .failed(.cancelled))
    }

    @Test func aPollThatFindsTextDropsTheObserversRegistration() throws {
        let loop = EmbeddedEventLoop()
        let buffer = try makeBuffer()
        let observer = Observer(loop)
        #expect(buffer.poll(at: 0, maximumBytes: 100, notifying: observer) == nil)
        try buffer.append("ab")
        // It polls before it is told (its socket had room again), and takes the text.
        #expect(buffer.poll(at: 0, maximumBytes: 100, notifying: observer) == .chunks([ResumableStreamChunk(text: "ab", offset: 2)]))
        loop.run()
        try buffer.append("cd")
        loop.run()
        #expect(observer.count == 1, "told of the first append only, whose job was already queued")
    }

    @Test func anObserverThatStoppedIsNotTold() throws {
        let loop = EmbeddedEventLoop()
        let buffer = try makeBuffer()
        let observer = Observer(loop)
        #expect(buffer.poll(at: 0, maximumBytes: 100, notifying: observer) == nil)
        buffer.stopNotifying(observer)
        try buffer.append("ab")
        buffer.finish(.completed)
        loop.run()
        #expect(observer.count == 0)
    }

    @Test func observersOfSeveralLoopsAreEachToldOnTheirOwn() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let buffer = try makeBuffer()
        let observers = (0..<10).map { Observer(loops[$0 % 2]) }
        for observer in observers {
            #expect(buffer.poll(at: 0, maximumBytes: 100, notifying: observer) == nil)
        }
        try buffer.append("ab")
        // Each loop's job has run once a job queued after it on that loop has.
        for loop in loops {
            try await loop.submit {}.get()
        }
        #expect(observers.map(\.count) == Array(repeating: 1, count: 10))
        #expect(observers.map(\.offLoop) == Array(repeating: 0, count: 10))
        try await group.shutdownGracefully()
    }
}
