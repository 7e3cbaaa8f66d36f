import ResumableStream
import TestSupport
import Testing

/// Durable ingest streams whose producers go away at random (their body breaks off, or their
/// instance is cut off from Redis) and are continued on a random instance from a random earlier
/// offset that the client knows, while readers disconnect at random and resume at their last offset
/// on a random instance: every reader's text, and the stored text, is the source's exactly once.
@Suite("Durable property", .serialized, .timeLimit(.minutes(3)))
struct DurablePropertyTests {
    @Test(arguments: [BrokerKind.redis, .cluster], [11, 12, 13] as [UInt64])
    func everyReaderGetsTheSourceOnceWhateverHappensToItsProducers(kind: BrokerKind, seed: UInt64) async throws {
        var random = SeededRandom(seed: seed)
        let chunks = (0..<50).map { _ in
            (0..<Int.random(in: 1...12, using: &random)).map { _ in ResumePropertyTests.alphabet.randomElement(using: &random) ?? "a" }.joined()
        }
        let expected = chunks.joined()
        // Where each chunk ends: the offsets a client can resend from.
        var ends = [0]
        for chunk in chunks { ends.append(ends[ends.count - 1] + chunk.utf16.count) }

        // Context 3 is the one whose connections are cut (its process "dies"): nothing else runs there.
        try await Deployment.with(kind, contexts: 4, options: {
            DurableStreamTests.durable(&$0)
            $0.leaseSeconds = 1
        }) { deployment throws in
            let id = "durable-property-\(seed)"
            let alive = [0, 1, 2]
            let readerSeeds = (0..<4).map { _ in UInt64.random(in: 1...UInt64.max, using: &random) }

            // The first producer runs on the instance that dies.
            var source = DetachableSource()
            guard case .created = try await deployment.contexts[3].createStreamIfAbsent(id, continuable: true, source: source.make) else {
                Issue.record("not created")
                return
            }
            let texts = try await withThrowingTaskGroup(of: String.self) { group in
                for readerSeed in readerSeeds {
                    group.addTask { try await Self.read(id, in: deployment, on: alive, seed: readerSeed) }
                }
                var next = 0
                var killed = false
                while next < chunks.count {
                    source.send(chunks[next])
                    next += 1
                    if Int.random(in: 0..<100, using: &random) < 8 || (!killed && next == 10) {
                        // The producer goes away: the instance dies the first time, then bodies
                        // break off. The client asks where the stream is, and resends from there
                        // or from a little earlier.
                        if !killed {
                            killed = true
                            await deployment.kill(context: 3)
                        } else {
                            source.detach()
                        }
                        let context = deployment.contexts[alive.randomElement(using: &random) ?? 0]
                        let known = try await context.status(of: id).length ?? 0
                        let candidates = ends.filter { $0 <= known && $0 >= known - 12 }
                        let from = candidates.randomElement(using: &random) ?? 0
                        source = DetachableSource()
                        try await Self.continueStream(id, on: context, from: from, source: source)
                        // Everything from `from` goes again: the new producer drops what is stored.
                        let resent = ends.firstIndex(of: from) ?? 0
                        for chunk in chunks[resent..<next] { source.send(chunk) }
                    }
                    await Task.yield()
                }
                source.finish()
                var texts: [String] = []
                for try await text in group { texts.append(text) }
                return texts
            }
            for (index, text) in texts.enumerated() {
                #expect(text == expected, "reader \(index) of seed \(seed): \(text.count) characters, \(expected.count) expected")
            }
            let stored = try await deployment.contexts[1].resumeExistingStream(id).reader().text()
            #expect(stored == expected)
        }
    }

    /// Continues `id`, waiting while the producer that went away still holds it (its lease has not
    /// run out, or it is still storing what it had).
    static func continueStream(_ id: String, on context: ResumableStreamContext, from offset: Int, source: DetachableSource) async throws {
        var answer = ResumableStreamContinuation.busy(length: 0)
        try await eventually(timeout: .seconds(20)) {
            answer = try await context.continueStream(id, from: offset, source: source.make)
            if case .busy = answer { return false }
            return true
        }
        switch answer {
        case .continued: return
        case let other: throw UnexpectedResult(description: "continuing \(id) from \(offset): \(other)")
        }
    }

    /// A reader that drops its stream now and then and resumes at its last offset on a random
    /// instance.
    static func read(_ id: String, in deployment: Deployment, on contexts: [Int], seed: UInt64) async throws -> String {
        var random = SeededRandom(seed: seed)
        var text = ""
        var offset = 0
        while true {
            let context = deployment.contexts[contexts.randomElement(using: &random) ?? 0]
            let reader = try await context.resumeExistingStream(id, resumeAt: offset).reader()
            var iterator = reader.makeAsyncIterator()
            let before = Int.random(in: 1...15, using: &random)
            for _ in 0..<before {
                guard let chunk = try await iterator.next() else { return text }
                text += chunk.text
                offset = chunk.offset
            }
        }
    }
}
