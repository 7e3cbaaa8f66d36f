import ResumableStream
import Testing

/// Readers that disconnect at random points and resume at the last offset they received, on a random
/// instance, while the source is still producing: each must end up with exactly the source's text.
@Suite("Resume property", .timeLimit(.minutes(2)))
struct ResumePropertyTests {
    /// Text pieces of one, two and three UTF-8 bytes, a surrogate pair, a combining sequence and a
    /// line break: every way a UTF-16 offset and a byte count can disagree.
    static let alphabet = ["a", "b", " ", "é", "€", "中", "🌍", "e\u{301}", "\n", "x"]

    @Test(arguments: BrokerKind.allCases, [1, 2, 3])
    func readersThatResumeAtTheirLastOffsetMissNothingAndRepeatNothing(kind: BrokerKind, seed: UInt64) async throws {
        var random = SeededRandom(seed: seed)
        let chunks = (0..<60).map { _ in
            (0..<Int.random(in: 1...12, using: &random)).map { _ in Self.alphabet.randomElement(using: &random) ?? "a" }.joined()
        }
        let expected = chunks.joined()

        try await Deployment.with(kind, contexts: 3, options: { $0.replayGrace = .seconds(30) }) { deployment throws in
            let id = "property-\(seed)"
            let source = ManualSource()
            _ = try await deployment.contexts[0].resumableStream(id, source: source.make).reader()

            let readerSeeds = (0..<6).map { _ in UInt64.random(in: 1...UInt64.max, using: &random) }
            let producing = Task {
                for chunk in chunks {
                    source.send(chunk)
                    await Task.yield()
                }
                source.finish()
            }
            let texts = try await withThrowingTaskGroup(of: String.self) { group in
                for readerSeed in readerSeeds {
                    group.addTask {
                        var random = SeededRandom(seed: readerSeed)
                        var text = ""
                        var offset = 0
                        var done = false
                        while !done {
                            // Connect to any instance, read a few chunks, then drop the connection.
                            let context = deployment.contexts.randomElement(using: &random) ?? deployment.contexts[0]
                            let reader = try await context.resumeExistingStream(id, resumeAt: offset).reader()
                            var chunks = reader.makeAsyncIterator()
                            let budget = Int.random(in: 1...8, using: &random)
                            for _ in 0..<budget {
                                guard let chunk = try await chunks.next() else {
                                    done = true
                                    break
                                }
                                text += chunk.text
                                offset = chunk.offset
                            }
                        }
                        return text
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            await producing.value
            for text in texts {
                #expect(text == expected)
            }
        }
    }
}

/// SplitMix64: a small random generator with a seed, so that a failing case can be replayed.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
