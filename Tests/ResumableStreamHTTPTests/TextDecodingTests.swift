import Hummingbird
import NIOCore
import Testing

@testable import ResumableStreamHTTP

/// Bytes that arrive in pieces become text without a character cut in two; ids in paths are
/// percent-decoded strictly.
struct TextDecodingTests {
    static let text = "aé€🌍 end, ∑x²"

    @Test(arguments: 0...Array(text.utf8).count)
    func aSplitAtAnyByteGivesTheTextBack(at split: Int) {
        let bytes = Array(Self.text.utf8)
        var decoder = UTF8Chunks()
        let first = decoder.decode(ByteBuffer(bytes: bytes[..<split]))
        let second = decoder.decode(ByteBuffer(bytes: bytes[split...]))
        #expect(first + second + decoder.finish() == Self.text)
        // No piece ends inside a character, so each is valid text on its own.
        #expect(String(validating: Array(first.utf8), as: UTF8.self) == first)
    }

    @Test func oneByteAtATime() {
        var decoder = UTF8Chunks()
        var pieces: [String] = []
        for byte in Self.text.utf8 {
            pieces.append(decoder.decode(ByteBuffer(bytes: [byte])))
        }
        #expect(pieces.joined() == Self.text)
        #expect(pieces.filter { !$0.isEmpty }.count == Self.text.unicodeScalars.count)
    }

    @Test func bytesThatAreNotUTF8BecomeReplacementCharacters() {
        var decoder = UTF8Chunks()
        #expect(decoder.decode(ByteBuffer(bytes: [0x61, 0xFF, 0x62])) == "a\u{FFFD}b")
        // A character that never gets its end.
        #expect(decoder.decode(ByteBuffer(bytes: [0x63, 0xE2, 0x82])) == "c")
        #expect(decoder.finish() == "\u{FFFD}")
    }

    @Test func streamIdsArePercentDecodedStrictly() {
        typealias Routes = ResumableStreamRoutes<Hummingbird.BasicRequestContext>
        #expect(Routes.percentDecoded("a%20b") == "a b")
        #expect(Routes.percentDecoded("a%2541") == "a%41")
        #expect(Routes.percentDecoded("%E2%82%AC") == "€")
        #expect(Routes.percentDecoded("a%zz") == nil)
        #expect(Routes.percentDecoded("a%2") == nil)
        #expect(Routes.percentDecoded("a%FF") == nil)
    }
}
