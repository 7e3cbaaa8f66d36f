import Redis
@testable import ResumableStream
import TestSupport
import Testing

/// Where this project does better than the reference: cancellation, late resume, followers that
/// cannot hang, bounded buffers.
@Suite("Beyond the reference", .timeLimit(.minutes(2)))
struct BeyondTheReferenceTests {
    @Test(arguments: BrokerKind.allCases)
    func cancelFromAnotherInstanceStopsTheSourceAndEndsEveryReader(kind: BrokerKind) async throws {
        try await Deployment.with(kind) { deployment throws in
            let source = ManualSource()
            let observedCancellation = Tally()
            source.continuation.onTermination = { termination in
                if case .cancelled = termination { observedCancellation.add() }
            }
            let producer = try await deployment.contexts[0].resumableStream("cancel", source: source.make).reader()
            source.send("before")
            let follower = try await deployment.contexts[1].resumeExistingStream("cancel").reader()
            var followerChunks = follower.makeAsyncIterator()
            #expect(try await followerChunks.next()?.text == "before")

            #expect(try await deployment.contexts[1].cancel("cancel"))

            // Both readers see a cancellation, told apart from an error and from a normal end.
            await #expect(throws: ResumableStreamError.cancelled) { _ = try await producer.text() }
            await #expect(throws: ResumableStreamError.cancelled) { _ = try await followerChunks.next() }
            await observedCancellation.wait(until: 1)
        }
    }

    @Test(arguments: BrokerKind.allCases)
    func aResumeDuringTheReplayGraceGetsTheWholeStream(kind: BrokerKind) async throws {
        try await Deployment.with(kind, options: { $0.replayGrace = .seconds(60) }) { deployment throws in
            let source = ManualSource()
            let reader = try await deployment.contexts[0].resumableStream("late", source: source.make).reader()
            source.send("the ", "whole ", "text")
            source.finish()
            #expect(try await reader.text() == "the whole text")
            // The source has ended; the stream still replays, on any instance.
            #expect(try await deployment.contexts[1].state(of: "late") == .live)
            #expect(try await deployment.contexts[1].resumeExistingStream("late").reader().text() == "the whole text")
            #expect(try await deployment.contexts[1].resumeExistingStream("late", resumeAt: 4).reader().text() == "whole text")
            // Cancelling a finished stream ends its grace at once; what was read stays read.
            #expect(try await deployment.contexts[1].cancel("late"))
            await deployment.contexts[0].waitForProducer("late")
            #expect(try await deployment.contexts[1].resumeExistingStream("late").isFinished)
        }
    }

    @Test(arguments: BrokerKind.allCases)
    func afterTheReplayGraceTheStreamIsFinished(kind: BrokerKind) async throws {
        try await Deployment.with(kind, options: { $0.replayGrace = .milliseconds(200) }) { deployment throws in
            let source = ManualSource()
            let reader = try await deployment.contexts[0].resumableStream("graced", source: source.make).reader()
            source.send("text")
            source.finish()
            #expect(try await reader.text() == "text")
            await deployment.contexts[0].waitForProducer("graced")
            #expect(try await deployment.contexts[1].state(of: "graced") == .finished)
            #expect(try await deployment.contexts[1].resumeExistingStream("graced").isFinished)
        }
    }

    /// The test plays a producer that answers, then finishes without sending the end message. A
    /// follower that finds the stream finished asks again for the rest: a producer in its replay
    /// grace sends it; without an answer the follower cannot know it has everything.
    @Test(arguments: BrokerKind.allCases, [true, false])
    func aFollowerWhoseEndMessageIsLostStillEnds(kind: BrokerKind, answered: Bool) async throws {
        try await Deployment.with(kind, options: {
            $0.watchdogInterval = .milliseconds(200)
            // Long enough for the test to answer the first request on a loaded machine (else the
            // follower gives up before it asks again); the unanswered second request waits it out.
            $0.acknowledgementTimeout = .seconds(10)
        }) { deployment throws in
            let broker = deployment.broker
            let sentinel = deployment.wire.sentinelKey("lost-end")
            try await broker.set(sentinel, to: "1", expireInSeconds: 60)
            let requests = try await broker.subscribe(to: deployment.wire.requestChannel("lost-end"))
            defer { requests.cancel() }

            let follower = Task { try await deployment.contexts[0].resumeExistingStream("lost-end").reader().text() }
            defer { follower.cancel() }
            var incoming = requests.makeAsyncIterator()
            guard case .message(let request)? = try await incoming.next(), let listener = listenerId(in: request) else {
                Issue.record("expected a resume request"); return
            }
            try await broker.publish("everything", to: deployment.wire.chunkChannel(listener, of: "lost-end"))
            try await broker.set(sentinel, to: "DONE", expireInSeconds: 60)
            guard case .message(let again)? = try await incoming.next(), let second = listenerId(in: again) else {
                Issue.record("expected the follower to ask again"); return
            }
            guard answered else {
                await #expect(throws: ResumableStreamError.missedEnd(streamId: "lost-end")) { _ = try await follower.value }
                return
            }
            try await broker.publish(WireProtocol.endMessage, to: deployment.wire.chunkChannel(second, of: "lost-end"))
            #expect(try await follower.value == "everything")
        }
    }

    @Test(arguments: BrokerKind.allCases)
    func theStreamBufferIsBoundedAndItsReadersSeeTheLimit(kind: BrokerKind) async throws {
        try await Deployment.with(kind, options: { $0.streamBufferLimit = 10 }) { deployment throws in
            let source = ManualSource()
            let producer = try await deployment.contexts[0].resumableStream("bounded", source: source.make).reader()
            source.send("12345")
            let follower = try await deployment.contexts[1].resumeExistingStream("bounded").reader()
            source.send("67890", "x")
            var producerText = ""
            await #expect(throws: ResumableStreamError.streamBufferLimitExceeded(limit: 10)) {
                for try await chunk in producer { producerText += chunk.text }
            }
            #expect(producerText == "1234567890")
            var followerText = ""
            let error = await #expect(throws: ResumableStreamError.self) {
                for try await chunk in follower { followerText += chunk.text }
            }
            #expect(followerText == "1234567890")
            guard case .sourceFailed(let reason)? = error else {
                Issue.record("expected the producer's failure, got \(String(describing: error))"); return
            }
            #expect(reason.contains("buffer limit"))
            await deployment.contexts[0].waitForProducer("bounded")
            #expect(deployment.contexts[0].bufferedBytes == 0)
        }
    }

    /// A follower on another instance gets the source's failure in the producer's words, as the
    /// producer's own reader does.
    @Test(arguments: BrokerKind.allCases)
    func aSourceFailureReachesFollowersInItsOwnWords(kind: BrokerKind) async throws {
        struct ModelTimedOut: Error, CustomStringConvertible {
            var description: String { "the model timed out" }
        }
        try await Deployment.with(kind) { deployment throws in
            let source = DetachableSource()
            let producer = try await deployment.contexts[0].resumableStream("failing", source: source.make).reader()
            source.send("partial")
            let follower = try await deployment.contexts[1].resumeExistingStream("failing").reader()
            source.continuation.finish(throwing: ModelTimedOut())
            for reader in [producer, follower] {
                let error = await #expect(throws: ResumableStreamError.self) { _ = try await reader.text() }
                #expect(error == .sourceFailed("the model timed out"))
            }
        }
    }

    @Test(arguments: BrokerKind.allCases)
    func aThousandStreamsAtOnce(kind: BrokerKind) async throws {
        try await Deployment.with(kind, options: { $0.replayGrace = .seconds(5) }) { deployment throws in
            let ids = (0..<1_000).map { "stream-\($0)" }
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for id in ids {
                    group.addTask {
                        let source = ManualSource()
                        let producer = try await deployment.contexts[0].resumableStream(id, source: source.make).reader()
                        source.send("\(id):", "a", "b")
                        let follower = try await deployment.contexts[1].resumeExistingStream(id, resumeAt: 1).reader()
                        source.send("c")
                        source.finish()
                        let expected = "\(id):abc"
                        let produced = try await producer.text()
                        let followed = try await follower.text()
                        return (produced == expected ? 0 : 1) + (followed == String(expected.dropFirst()) ? 0 : 1)
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
        }
    }
}

extension BeyondTheReferenceTests {
    /// A long replay goes out as several messages of at most the frame size, never as one.
    @Test(arguments: BrokerKind.allCases)
    func theAnswerToAResumeGoesOutInBoundedFrames(kind: BrokerKind) async throws {
        // The grace keeps the producer answering however late its request loop sees the request.
        try await Deployment.with(kind, options: {
            $0.frameSize = 1_024
            $0.replayGrace = .seconds(30)
        }) { deployment throws in
            let source = ManualSource()
            let producer = try await deployment.contexts[0].resumableStream("frames", source: source.make).reader()
            let chunks = (0..<10).map { String(repeating: "\($0 % 10)é", count: 250) } + [String(repeating: "🌍", count: 1_500)]
            for chunk in chunks { source.send(chunk) }

            // The test is a listener, as the reference's consumer is: its channel, then its request.
            let listener = "frames-listener"
            let messages = try await deployment.broker.subscribe(to: deployment.wire.chunkChannel(listener, of: "frames"))
            defer { messages.cancel() }
            var producerChunks = producer.makeAsyncIterator()
            for chunk in chunks {
                #expect(try await producerChunks.next()?.text == chunk)
            }
            try await deployment.broker.publish(
                #"{"listenerId":"\#(listener)","skipCharacters":0}"#,
                to: deployment.wire.requestChannel("frames")
            )
            source.finish()
            var received: [String] = []
            for try await event in messages {
                guard case .message(let message) = event else { continue }
                if message.hasPrefix("\n\n\nDONE_SENTINEL_") { break }
                received.append(message)
            }
            #expect(received.count > 1)
            #expect(received.allSatisfy { $0.utf8.count <= 1_024 })
            #expect(received.joined() == chunks.joined())
        }
    }
}

/// The listener id of a resume request, read as the reference reads it.
func listenerId(in request: String) -> String? {
    guard
        let start = request.range(of: #""listenerId":""#)?.upperBound,
        let end = request[start...].firstIndex(of: "\"")
    else { return nil }
    return String(request[start..<end])
}

extension BeyondTheReferenceTests {
    /// A follower on another instance gets the source's chunks as they were made, with the
    /// creator's offsets, whether they come live or in a replay that packs many into one message.
    @Test(arguments: BrokerKind.allCases)
    func followersOnAnotherInstanceGetTheSourcesChunks(kind: BrokerKind) async throws {
        try await Deployment.with(kind, options: { $0.frameSize = 64 }) { deployment throws in
            let source = ManualSource()
            let producer = try await deployment.contexts[0].resumableStream("boundaries", source: source.make).reader()
            let early = (0..<40).map { #"{"n":\#($0)}"# } + [String(repeating: "é", count: 100)]
            for chunk in early { source.send(chunk) }
            var produced: [ResumableStreamChunk] = []
            var iterator = producer.makeAsyncIterator()
            for _ in early {
                if let chunk = try await iterator.next() { produced.append(chunk) }
            }
            let follower = try await deployment.contexts[1].resumeExistingStream("boundaries").reader()
            let late = ["\u{0}x", WireProtocol.endMessage + "!", "last"]
            for chunk in late { source.send(chunk) }
            source.finish()
            while let chunk = try await iterator.next() { produced.append(chunk) }
            var followed: [ResumableStreamChunk] = []
            for try await chunk in follower { followed.append(chunk) }
            #expect(produced.map(\.text) == early + late)
            #expect(followed == produced)
        }
    }
}
