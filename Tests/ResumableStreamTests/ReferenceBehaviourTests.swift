import ResumableStream
import Testing

/// The behaviours of vercel/resumable-stream's own test suite, on the embedded broker and on Redis,
/// with two contexts standing for two instances.
@Suite("Reference behaviours", .timeLimit(.minutes(2)))
struct ReferenceBehaviourTests {
    @Test(arguments: BrokerKind.allCases)
    func actsLikeANormalStream(kind: BrokerKind) async throws {
        try await Deployment.with(kind) { deployment throws in
            let source = ManualSource()
            let reader = try await deployment.contexts[0].resumableStream("normal", source: source.make).reader()
            source.send("1", "2", "3")
            source.finish()
            #expect(try await reader.text() == "123")
            #expect(source.callCount == 1)
        }
    }

    @Test(arguments: BrokerKind.allCases)
    func resumingAFinishedStreamGivesFinishedAndNeverCallsTheSource(kind: BrokerKind) async throws {
        try await Deployment.with(kind) { deployment throws in
            let source = ManualSource()
            let reader = try await deployment.contexts[0].resumableStream("finished", source: source.make).reader()
            source.send("all", " of it")
            source.finish()
            #expect(try await reader.text() == "all of it")
            await deployment.contexts[0].waitForProducer("finished")

            let again = ManualSource()
            for context in deployment.contexts {
                #expect(try await context.resumableStream("finished", source: again.make).isFinished)
                #expect(try await context.resumeExistingStream("finished").isFinished)
            }
            #expect(again.callCount == 0)
        }
    }

    @Test(arguments: BrokerKind.allCases)
    func existenceCheckGoesThroughItsThreeStates(kind: BrokerKind) async throws {
        try await Deployment.with(kind) { deployment throws in
            let context = deployment.contexts[1]
            #expect(try await context.state(of: "exists") == .none)
            let source = ManualSource()
            let reader = try await deployment.contexts[0].resumableStream("exists", source: source.make).reader()
            #expect(try await context.state(of: "exists") == .live)
            source.finish()
            #expect(try await reader.text() == "")
            await deployment.contexts[0].waitForProducer("exists")
            #expect(try await context.state(of: "exists") == .finished)
        }
    }

    @Test(arguments: BrokerKind.allCases)
    func resumesAStreamInProgressOnAnotherInstance(kind: BrokerKind) async throws {
        try await Deployment.with(kind) { deployment throws in
            let source = ManualSource()
            let producer = try await deployment.contexts[0].resumableStream("progress", source: source.make).reader()
            source.send("a", "b")
            let resumed = try await deployment.contexts[1].resumableStream("progress", source: source.make).reader()
            source.send("c")
            source.finish()
            #expect(try await resumed.text() == "abc")
            #expect(try await producer.text() == "abc")
            #expect(source.callCount == 1)
        }
    }

    /// Chunk k reaches both readers before chunk k+1 exists: both really stream.
    @Test(arguments: BrokerKind.allCases, [true, false])
    func bothReadersReallyStream(kind: BrokerKind, producerReadsFirst: Bool) async throws {
        try await Deployment.with(kind) { deployment throws in
            let source = ManualSource()
            let producer = try await deployment.contexts[0].resumableStream("live", source: source.make).reader()
            let consumer = try await deployment.contexts[1].resumableStream("live", source: source.make).reader()
            var producerChunks = producer.makeAsyncIterator()
            var consumerChunks = consumer.makeAsyncIterator()
            for index in 0..<5 {
                source.send("chunk \(index) ")
                if producerReadsFirst {
                    #expect(try await producerChunks.next()?.text == "chunk \(index) ")
                    #expect(try await consumerChunks.next()?.text == "chunk \(index) ")
                } else {
                    #expect(try await consumerChunks.next()?.text == "chunk \(index) ")
                    #expect(try await producerChunks.next()?.text == "chunk \(index) ")
                }
            }
            source.finish()
            #expect(try await producerChunks.next() == nil)
            #expect(try await consumerChunks.next() == nil)
        }
    }

    @Test(arguments: BrokerKind.allCases)
    func severalResumersOnSeveralInstances(kind: BrokerKind) async throws {
        try await Deployment.with(kind, contexts: 3) { deployment throws in
            let source = ManualSource()
            let producer = try await deployment.contexts[0].resumableStream("many", source: source.make).reader()
            source.send("x")
            var readers = [producer]
            for context in deployment.contexts {
                readers.append(try await context.resumableStream("many", source: source.make).reader())
                readers.append(try await context.resumeExistingStream("many").reader())
            }
            source.send("y", "z")
            source.finish()
            for reader in readers {
                #expect(try await reader.text() == "xyz")
            }
            #expect(source.callCount == 1)
        }
    }

    @Test(arguments: BrokerKind.allCases)
    func twoStreamsAreKeptApart(kind: BrokerKind) async throws {
        try await Deployment.with(kind) { deployment throws in
            let first = ManualSource()
            let second = ManualSource()
            let a = try await deployment.contexts[0].resumableStream("first", source: first.make).reader()
            let b = try await deployment.contexts[0].resumableStream("second", source: second.make).reader()
            let resumedA = try await deployment.contexts[1].resumeExistingStream("first").reader()
            let resumedB = try await deployment.contexts[1].resumeExistingStream("second").reader()
            first.send("1", "1")
            second.send("2", "2")
            first.finish()
            second.finish()
            #expect(try await a.text() == "11")
            #expect(try await b.text() == "22")
            #expect(try await resumedA.text() == "11")
            #expect(try await resumedB.text() == "22")
        }
    }

    /// Offsets count UTF-16 code units, as JavaScript does: "é" is one, "🌍" two.
    @Test(arguments: BrokerKind.allCases)
    func resumeAtZeroMidChunkAndTheEnd(kind: BrokerKind) async throws {
        try await Deployment.with(kind, options: { $0.replayGrace = .seconds(30) }) { deployment throws in
            let source = ManualSource()
            let producer = try await deployment.contexts[0].resumableStream("offsets", source: source.make).reader()
            source.send("héllo ", "🌍 world")
            let context = deployment.contexts[1]
            let fromZero = try await context.resumeExistingStream("offsets", resumeAt: 0).reader()
            let midChunk = try await context.resumeExistingStream("offsets", resumeAt: 2).reader()
            let afterEmoji = try await context.resumeExistingStream("offsets", resumeAt: 8).reader()
            // The end while live: waits for what comes next.
            let atEnd = try await context.resumeExistingStream("offsets", resumeAt: 14).reader()
            source.send("!")
            source.finish()
            #expect(try await fromZero.text() == "héllo 🌍 world!")
            #expect(try await midChunk.text() == "llo 🌍 world!")
            #expect(try await afterEmoji.text() == " world!")
            #expect(try await atEnd.text() == "!")
            #expect(try await producer.text() == "héllo 🌍 world!")

            // The end of a finished stream (still in its replay grace): nothing more, a normal end.
            let finishedEnd = try await context.resumeExistingStream("offsets", resumeAt: 15).reader()
            #expect(try await finishedEnd.text() == "")
            // Past the end of a finished stream: an error that says so.
            let past = try await context.resumeExistingStream("offsets", resumeAt: 99).reader()
            await #expect(throws: ResumableStreamError.offsetBeyondEnd(offset: 99, length: 15)) { try await past.text() }
        }
    }

    @Test(arguments: BrokerKind.allCases)
    func explicitCreateAndResume(kind: BrokerKind) async throws {
        try await Deployment.with(kind) { deployment throws in
            #expect(try await deployment.contexts[1].resumeExistingStream("explicit").isNotFound)
            let source = ManualSource()
            let reader = try await deployment.contexts[0].createNewResumableStream("explicit", source: source.make)
            source.send("one ")
            let resumed = try await deployment.contexts[1].resumeExistingStream("explicit", resumeAt: 2).reader()
            source.send("two")
            source.finish()
            #expect(try await reader.text() == "one two")
            #expect(try await resumed.text() == "e two")
        }
    }

    @Test(arguments: BrokerKind.allCases)
    func invalidIdsAndOffsetsAreRefusedBeforeTheBroker(kind: BrokerKind) async throws {
        try await Deployment.with(kind) { deployment throws in
            for id in ["", String(repeating: "x", count: 300), "line\nbreak"] {
                await #expect(throws: ResumableStreamError.self) { try await deployment.contexts[0].state(of: id) }
            }
            await #expect(throws: ResumableStreamError.invalidOffset(-1)) {
                try await deployment.contexts[0].resumeExistingStream("any", resumeAt: -1)
            }
        }
    }
}
