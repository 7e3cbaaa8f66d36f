import ResumableStream
import Testing

@Suite("Smoke")
struct SmokeTests {
    @Test(arguments: BrokerKind.allCases)
    func producerAndRemoteFollower(kind: BrokerKind) async throws {
        try await Deployment.with(kind) { deployment throws in
            let source = ManualSource()
            let id = "smoke"
            guard case .stream(let producerReader) = try await deployment.contexts[0].resumableStream(id, source: source.make) else {
                Issue.record("expected to produce"); return
            }
            source.send("Hello, ", "wörld")
            guard case .stream(let follower) = try await deployment.contexts[1].resumeExistingStream(id, resumeAt: 3) else {
                Issue.record("expected to follow"); return
            }
            source.send(" 🌍!")
            source.finish()
            var produced = ""
            for try await chunk in producerReader { produced += chunk.text }
            var followed = ""
            for try await chunk in follower { followed += chunk.text }
            #expect(produced == "Hello, wörld 🌍!")
            #expect(followed == "lo, wörld 🌍!")
        }
    }
}
