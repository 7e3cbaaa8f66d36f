import Foundation
import Redis
import ResumableStream
import TestSupport
import Testing

/// Durable streams against a real redis-server: contexts stand for instances; cutting a context's
/// connections stands for its process dying (the process-level tests are in FaultTests).
@Suite(.serialized) struct DurableStreamTests {
    static func durable(_ options: inout ResumableStreamOptions) {
        options.durability = .redis
        options.leaseSeconds = 2
        options.watchdogInterval = .milliseconds(200)
        // Long enough that no test waits for it unless it sets it shorter: the suite may run on a
        // crowded machine.
        options.ingestReattachSeconds = 60
        options.retentionSeconds = 600
    }

    static let chunks = ["Hello", ", ", "wörld", " 🌍", "\n", "{\"a\":1}", "日本語", "!"]

    @Test func anyInstanceReadsAFinishedStreamFromTheStoreAfterItsProducerHasGone() async throws {
        try await Deployment.with(.redis, contexts: 3, options: Self.durable) { deployment in
            let source = ManualSource()
            let reader = try await deployment.contexts[0].resumableStream("kept", source: source.make).reader()
            for chunk in Self.chunks { source.send(chunk) }
            source.finish()
            #expect(try await reader.text() == Self.chunks.joined())
            await deployment.contexts[0].waitForProducer("kept")
            await deployment.kill(context: 0)

            // The source's chunks, with the creator's offsets, from any point.
            var offsets: [Int] = []
            var total = 0
            for chunk in Self.chunks {
                total += chunk.utf16.count
                offsets.append(total)
            }
            for context in deployment.contexts[1...] {
                let all = try await context.resumeExistingStream("kept").reader()
                var read: [ResumableStreamChunk] = []
                for try await chunk in all { read.append(chunk) }
                #expect(read.map(\.text) == Self.chunks)
                #expect(read.map(\.offset) == offsets)
                let middle = offsets[3]
                #expect(try await context.resumeExistingStream("kept", resumeAt: middle).reader().text() == Self.chunks[4...].joined())
                #expect(try await context.resumeExistingStream("kept", resumeAt: total).reader().text() == "")
                // The idempotent call of the reference reads it too, rather than "finished".
                #expect(try await context.resumableStream("kept", source: { AsyncStream<String> { $0.finish() } }).reader().text() == Self.chunks.joined())
                let status = try await context.status(of: "kept")
                #expect(status == ResumableStreamStatus(state: .finished, length: total))
            }
            // Every key the stream left expires.
            let redis = try #require(deployment.redis)
            let keys = try #require(try await redis.send("KEYS", .string("\(deployment.prefix):*")).array).compactMap(\.string)
            #expect(Set(keys) == ["\(deployment.prefix):rs:log:kept", "\(deployment.prefix):rs:sentinel:kept"])
            for key in keys {
                let ttl = try #require(try await redis.send("TTL", .string(key)).integer)
                #expect(ttl > 0, "\(key) has TTL \(ttl)")
            }
        }
    }

    @Test(arguments: [BrokerKind.redis, .cluster])
    func followersOnOtherInstancesGetEachChunkLiveAndTheStoredEndOfADeadProducer(kind: BrokerKind) async throws {
        try await Deployment.with(kind, contexts: 3, options: Self.durable) { deployment in
            let source = ManualSource()
            _ = try await deployment.contexts[0].resumableStream("doomed", source: source.make).reader()
            source.send("one ", "two ")
            let followers = try await [1, 2].asyncMap { try await deployment.contexts[$0].resumeExistingStream("doomed").reader() }
            var iterators = followers.map { $0.makeAsyncIterator() }
            for index in iterators.indices {
                #expect(try await iterators[index].next()?.text == "one ")
                #expect(try await iterators[index].next()?.text == "two ")
            }
            source.send("three ")
            for index in iterators.indices {
                #expect(try await iterators[index].next()?.text == "three ")
            }
            await deployment.kill(context: 0)
            source.send("lost with its producer")
            for index in iterators.indices {
                await #expect(throws: ResumableStreamError.producerLost(streamId: "doomed")) { _ = try await iterators[index].next() }
            }
            // Readable afterwards, with the same end, at the stored length.
            let again = try await deployment.contexts[2].resumeExistingStream("doomed").reader()
            var text = ""
            await #expect(throws: ResumableStreamError.producerLost(streamId: "doomed")) {
                for try await chunk in again { text += chunk.text }
            }
            #expect(text == "one two three ")
            let status = try await deployment.contexts[1].status(of: "doomed")
            #expect(status == ResumableStreamStatus(state: .finished, length: 14, failure: .producerLost(streamId: "doomed")))
            source.finish()
        }
    }

    /// A durable stream costs a write per batch of chunks: at most one per chunk, fewer when chunks
    /// come faster than Redis answers.
    @Test func aThousandChunksCostAtMostAThousandWrites() async throws {
        let server = try await PrivateRedisServer.start()
        defer { server.stop() }
        try await Deployment.with(.redis, contexts: 1, redisURL: server.url, options: { Self.durable(&$0); $0.leaseSeconds = 60 }) { deployment in
            let redis = try #require(deployment.redis)
            for (id, paced) in [("paced", true), ("burst", false)] {
                _ = try await redis.send("CONFIG", "RESETSTAT")
                let source = ManualSource()
                let reader = try await deployment.contexts[0].resumableStream(id, source: source.make).reader()
                var iterator = reader.makeAsyncIterator()
                for index in 0..<1_000 {
                    source.send("chunk \(index) ")
                    // Paced: the next chunk only once the creator has this one, as a model's tokens.
                    if paced { _ = try await iterator.next() }
                }
                source.finish()
                while try await iterator.next() != nil {}
                await deployment.contexts[0].waitForProducer(id)
                let calls = try await PrivateRedisServer.commandCalls(redis)
                let writes = calls["xadd", default: 0]
                // One batch entry per write, plus the entry that creates the log and the end.
                #expect(writes <= 1_000 + 2, "\(id): \(calls)")
                // Scripts run by their SHA; the source goes once per process.
                #expect(calls["evalsha", default: 0] + calls["eval", default: 0] <= 1_000 + 3, "\(id): \(calls)")
                #expect(calls["xadd", default: 0] == calls["publish", default: 0] + 1, "\(id): \(calls)")
                if !paced {
                    // Chunks that pile up while a write is out go together in the next.
                    #expect(writes < 500, "\(id): \(calls)")
                }
                let stored = try await deployment.contexts[0].resumeExistingStream(id).reader().text()
                #expect(stored == (0..<1_000).map { "chunk \($0) " }.joined())
            }
        }
    }

    @Test(arguments: [BrokerKind.redis, .cluster])
    func anIngestIsContinuedFromItsStoredLengthOnAnotherInstance(kind: BrokerKind) async throws {
        try await Deployment.with(kind, contexts: 3, options: Self.durable) { deployment in
            let first = DetachableSource()
            guard case .created(let creator) = try await deployment.contexts[0].createStreamIfAbsent("upload", continuable: true, source: first.make) else {
                Issue.record("not created")
                return
            }
            let follower = try await deployment.contexts[2].resumeExistingStream("upload").reader()
            first.send("abc", "dé🌍")
            try await eventually { try await deployment.contexts[1].status(of: "upload").length == 7 }
            first.detach()
            await #expect(throws: ResumableStreamError.producerLost(streamId: "upload")) { _ = try await creator.text() }
            #expect(try await deployment.contexts[1].status(of: "upload") == ResumableStreamStatus(state: .live, length: 7))

            // Past what is stored: refused, with the length, once the producer has let go (its
            // readers learn that it went before the store does).
            let unused = DetachableSource()
            var beyond = ResumableStreamContinuation.busy(length: 0)
            try await eventually {
                beyond = try await deployment.contexts[1].continueStream("upload", from: 8, source: unused.make)
                if case .busy = beyond { return false }
                return true
            }
            guard case .beyondLength(7) = beyond else {
                Issue.record("expected beyondLength(7), got \(beyond)")
                return
            }
            // The client resends from 4 ("dé🌍…"): the first three units are dropped as stored.
            let second = DetachableSource()
            let continuation = try await deployment.contexts[1].continueStream("upload", from: 4, source: second.make)
            guard case .continued(let reader, length: 7) = continuation else {
                Issue.record("expected continued at 7, got \(continuation)")
                return
            }
            // One writer at a time.
            let third = DetachableSource()
            let busy = try await deployment.contexts[0].continueStream("upload", from: 7, source: third.make)
            guard case .busy(7) = busy else {
                Issue.record("expected busy(7), got \(busy)")
                return
            }
            second.send("dé🌍", "!", "\n")
            second.finish()
            #expect(try await reader.text() == "!\n")
            #expect(try await follower.text() == "abcdé🌍!\n")
            let ended = try await deployment.contexts[0].continueStream("upload", from: 9, source: third.make)
            guard case .finished(9) = ended else {
                Issue.record("expected finished(9), got \(ended)")
                return
            }
            let none = try await deployment.contexts[0].continueStream("no-such-upload", from: 0, source: third.make)
            guard case .notFound = none else {
                Issue.record("expected notFound, got \(none)")
                return
            }
        }
    }

    /// A producer that was cut off and replaced writes nothing over its successor: its token no
    /// longer holds the stream.
    @Test func aProducerThatWasReplacedIsFencedOff() async throws {
        try await Deployment.with(.redis, contexts: 2, options: { Self.durable(&$0); $0.leaseSeconds = 60 }) { deployment in
            let redis = try #require(deployment.redis)
            let old = DetachableSource()
            guard case .created(let oldReader) = try await deployment.contexts[0].createStreamIfAbsent("fenced", continuable: true, source: old.make) else {
                Issue.record("not created")
                return
            }
            old.send("first ")
            try await eventually { try await deployment.contexts[1].status(of: "fenced").length == 6 }
            // Its lease lapsed while it could not reach Redis: another producer takes the stream.
            _ = try await redis.del("\(deployment.prefix):rs:writer:fenced")
            let new = DetachableSource()
            guard case .continued(let newReader, length: 6) = try await deployment.contexts[1].continueStream("fenced", from: 6, source: new.make) else {
                Issue.record("not continued")
                return
            }
            old.send("written by the old producer")
            await #expect(throws: ResumableStreamError.producerLost(streamId: "fenced")) { _ = try await oldReader.text() }
            new.send("second")
            new.finish()
            #expect(try await newReader.text() == "second")
            #expect(try await deployment.contexts[0].resumeExistingStream("fenced").reader().text() == "first second")
        }
    }

    @Test(arguments: [BrokerKind.redis, .cluster])
    func aDetachedIngestThatNobodyContinuesEndsAsLost(kind: BrokerKind) async throws {
        try await Deployment.with(kind, contexts: 2, options: { Self.durable(&$0); $0.ingestReattachSeconds = 1 }) { deployment in
            let source = DetachableSource()
            _ = try await deployment.contexts[0].createStreamIfAbsent("abandoned", continuable: true, source: source.make)
            let follower = try await deployment.contexts[1].resumeExistingStream("abandoned").reader()
            source.send("half")
            source.detach()
            var text = ""
            await #expect(throws: ResumableStreamError.producerLost(streamId: "abandoned")) {
                for try await chunk in follower { text += chunk.text }
            }
            #expect(text == "half")
            let late = try await deployment.contexts[0].continueStream("abandoned", from: 4, source: DetachableSource().make)
            guard case .finished(4) = late else {
                Issue.record("expected finished(4), got \(late)")
                return
            }
        }
    }

    /// An ingest that waits to be continued has no producer to receive a cancellation: the store
    /// ends it.
    @Test(arguments: [BrokerKind.redis, .cluster])
    func aDetachedIngestCanBeCancelled(kind: BrokerKind) async throws {
        try await Deployment.with(kind, contexts: 2, options: Self.durable) { deployment in
            let source = DetachableSource()
            _ = try await deployment.contexts[0].createStreamIfAbsent("dropped", continuable: true, source: source.make)
            let follower = try await deployment.contexts[1].resumeExistingStream("dropped").reader()
            source.send("some")
            source.detach()
            // Once the producer has let go, nobody holds the stream but the store.
            try await eventually {
                if case .busy = try await deployment.contexts[1].continueStream("dropped", from: 99, source: DetachableSource().make) { return false }
                return true
            }
            #expect(try await deployment.contexts[1].cancel("dropped"))
            var text = ""
            await #expect(throws: ResumableStreamError.cancelled) {
                for try await chunk in follower { text += chunk.text }
            }
            #expect(text == "some")
            #expect(try await deployment.contexts[0].status(of: "dropped") == ResumableStreamStatus(state: .finished, length: 4, failure: .cancelled))
        }
    }

    /// Once its end is stored, a durable stream has ended on every instance, its producer's too,
    /// though that one still answers the reference's listeners through its replay grace.
    @Test(arguments: [BrokerKind.redis, .cluster])
    func theProducersInstanceSaysFinishedOnceTheEndIsStored(kind: BrokerKind) async throws {
        try await Deployment.with(kind, contexts: 2, options: { Self.durable(&$0); $0.replayGrace = .seconds(60) }) { deployment in
            let source = ManualSource()
            let reader = try await deployment.contexts[0].resumableStream("told", source: source.make).reader()
            source.send("done")
            source.finish()
            _ = try await reader.text()
            try await eventually { try await deployment.contexts[0].state(of: "told") == .finished }
            for context in deployment.contexts {
                #expect(try await context.status(of: "told") == ResumableStreamStatus(state: .finished, length: 4))
            }
            try await deployment.contexts[0].cancel("told")
            await deployment.contexts[0].waitForProducer("told")
        }
    }

    @Test func continuingNeedsDurableStreams() async throws {
        try await Deployment.with(.embedded, contexts: 1) { deployment in
            let error = await #expect(throws: ResumableStreamError.self) {
                _ = try await deployment.contexts[0].continueStream("any", from: 0, source: DetachableSource().make)
            }
            #expect(error == .notDurable)
        }
    }
}

/// A source the test feeds by hand, and whose producer it can make go away (as an ingest's
/// connection that breaks).
final class DetachableSource: Sendable {
    let stream: AsyncThrowingStream<String, any Error>
    let continuation: AsyncThrowingStream<String, any Error>.Continuation

    init() {
        (stream, continuation) = AsyncThrowingStream.makeStream(of: String.self)
    }

    var make: @Sendable () -> AsyncThrowingStream<String, any Error> {
        { [stream] in stream }
    }

    func send(_ chunks: String...) {
        for chunk in chunks { continuation.yield(chunk) }
    }

    func finish() {
        continuation.finish()
    }

    func detach() {
        continuation.finish(throwing: SourceDetached("the test cut it"))
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
