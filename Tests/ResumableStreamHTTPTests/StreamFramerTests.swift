import NIOCore
import ResumableStream
@testable import ResumableStreamHTTP
import Testing

/// A chunk written over several writes makes the same bytes as one written whole, wherever the
/// writes cut it: inside a line, between a CR and its LF, inside a character.
@Suite struct StreamFramerTests {
    static let texts = [
        "", "a", "\n", "\r", "\r\n", "a\r\nb\rc\nd", "one\ntwo\n", "é🌍中\nx\r", String(repeating: "token ", count: 700),
        String(repeating: "line\r\n", count: 300) + "end",
    ]

    /// The chunk written whole, then in writes of `limit` bytes each (a new buffer per write).
    private func pieces(_ text: String, _ framing: StreamFraming, limit: Int) -> (whole: String, parts: [ByteBuffer]) {
        let framer = StreamFramer(framing: framing, retryMilliseconds: 1000)
        let chunk = ResumableStreamChunk(text: text, offset: 42)
        var whole = ByteBuffer()
        framer.write([chunk], into: &whole)
        var part = StreamFramer.ChunkPart(chunk)
        var parts: [ByteBuffer] = []
        while !part.isComplete {
            var buffer = ByteBuffer()
            framer.write(&part, into: &buffer, limit: limit)
            parts.append(buffer)
        }
        return (String(buffer: whole), parts)
    }

    @Test(arguments: [StreamFraming.sse, .raw], [1, 2, 3, 7, 64, 1000])
    func aChunkInPiecesIsTheChunkWhole(framing: StreamFraming, limit: Int) {
        for text in Self.texts {
            let (whole, parts) = pieces(text, framing, limit: limit)
            let joined = parts.reduce(into: [UInt8]()) { $0 += $1.readableBytesView }
            #expect(joined == Array(whole.utf8), "\(text.debugDescription) in writes of \(limit)")
            #expect(parts.allSatisfy { $0.readableBytes <= limit + StreamFramer.overshoot })
        }
    }

    @Test func anEventInPiecesStartsWithItsIdOnce() {
        let (whole, parts) = pieces(String(repeating: "x", count: 100), .sse, limit: 40)
        #expect(whole.hasPrefix("id: 42\ndata: xxx"))
        #expect(parts.count == 3)
        #expect(parts.dropFirst().allSatisfy { !String(buffer: $0).contains("id:") })
    }
}
