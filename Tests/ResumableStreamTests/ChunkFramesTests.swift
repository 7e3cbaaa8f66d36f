@testable import ResumableStream
import Testing

struct ChunkFramesTests {
    private func roundTrip(_ chunks: [String], maximumBytes: Int) -> (messages: [String], decoded: [String]) {
        let messages = ChunkFrames.encode(chunks.map { $0[...] }, maximumBytes: maximumBytes)
        var decoder = ChunkFrames.Decoder()
        return (messages, messages.flatMap { decoder.decode($0[...]).map(String.init) })
    }

    @Test func aWholeChunkGoesAsItIs() {
        let (messages, decoded) = roundTrip(["hello"], maximumBytes: 64)
        #expect(messages == ["hello"])
        #expect(decoded == ["hello"])
    }

    @Test func severalChunksKeepTheirBoundariesInOneFrame() {
        let chunks = [#"{"a":1}"#, #"{"b":2}"#, "é🌍\n"]
        let (messages, decoded) = roundTrip(chunks, maximumBytes: 1_024)
        #expect(messages.count == 1)
        #expect(messages[0] == "\u{0}rs-chunks:7,7,7\u{0}" + chunks.joined())
        #expect(decoded == chunks)
    }

    @Test func framesStayWithinTheirSize() {
        let chunks = (0..<100).map { "chunk-\($0)|" }
        let (messages, decoded) = roundTrip(chunks, maximumBytes: 50)
        #expect(messages.count > 1)
        for message in messages {
            var decoder = ChunkFrames.Decoder()
            #expect(decoder.decode(message[...]).joined().utf8.count <= 50)
        }
        #expect(decoded == chunks)
    }

    @Test func aChunkLargerThanAFrameGoesInPartsAndComesBackWhole() {
        let large = String(repeating: "🌍é", count: 100)
        let chunks = ["a", large, "b"]
        let (messages, decoded) = roundTrip(chunks, maximumBytes: 64)
        #expect(messages.count > 3)
        #expect(decoded == chunks)
    }

    @Test func chunksThatLookLikeSomethingElseAreFramed() {
        let chunks = ["\u{0}rs-chunks:1\u{0}x", WireProtocol.endMessage + "not the end", "\u{0}"]
        for chunk in chunks {
            let (messages, decoded) = roundTrip([chunk], maximumBytes: 1_024)
            #expect(messages != [chunk])
            #expect(decoded == [chunk])
            #expect(WireProtocol.endReason(of: messages[0]) == nil)
        }
    }

    @Test func nothingBufferedIsAnEmptyMessage() {
        let (messages, decoded) = roundTrip([""], maximumBytes: 64)
        #expect(messages == [""])
        #expect(decoded == [])
    }

    @Test func aMalformedFrameIsOneChunk() {
        var decoder = ChunkFrames.Decoder()
        #expect(decoder.decode("\u{0}rs-chunks:5\u{0}abc") == ["\u{0}rs-chunks:5\u{0}abc"])
        #expect(decoder.decode("\u{0}rs-chunks:x\u{0}abc") == ["\u{0}rs-chunks:x\u{0}abc"])
    }

    @Test func aReferenceMessageIsOneChunk() {
        var decoder = ChunkFrames.Decoder()
        #expect(decoder.decode("abc") == ["abc"])
    }

    @Test(arguments: [7, 16, 100])
    func randomChunksComeBackAsTheyWere(maximumBytes: Int) {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "é", "🌍", "\n", "\u{0}", "{", "}"]
        for _ in 0..<200 {
            let chunks = (0..<Int.random(in: 1...20, using: &generator)).map { _ in
                String((0..<Int.random(in: 1...40, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            }
            #expect(roundTrip(chunks, maximumBytes: maximumBytes).decoded == chunks)
        }
    }
}
