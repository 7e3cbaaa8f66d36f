@testable import ResumableStream
import Testing

struct TextUnitsTests {
    // MARK: count

    @Test(arguments: [
        ("hello", 5),
        ("", 0),
        ("é", 1),
        ("€", 1),
        ("🌍", 2),
        ("e\u{301}", 2),
        ("a🌍€é", 5),
    ])
    func countIsInUTF16CodeUnits(text: String, units: Int) {
        #expect(TextUnits.count(text) == units)
        #expect(TextUnits.count(text[...]) == units)
    }

    // MARK: dropping

    @Test func droppingZeroKeepsTheText() {
        #expect(TextUnits.dropping(0, from: "hello") == "hello")
    }

    @Test func droppingInsideASCIIText() {
        #expect(TextUnits.dropping(2, from: "hello") == "llo")
    }

    @Test func droppingExactlyTheLengthLeavesNothing() {
        #expect(TextUnits.dropping(5, from: "hello").isEmpty)
    }

    @Test func droppingBeyondTheEndLeavesNothing() {
        #expect(TextUnits.dropping(99, from: "hello").isEmpty)
    }

    @Test func droppingCountsMultiUnitCharactersInUTF16() {
        #expect(TextUnits.dropping(3, from: "🌍€x") == "x")
        #expect(TextUnits.dropping(2, from: "é€x") == "x")
    }

    @Test func droppingInsideASurrogatePairMovesPastThePair() {
        #expect(TextUnits.dropping(1, from: "🌍x") == "x")
    }

    @Test func droppingInsideACombiningSequenceKeepsTheExactScalars() {
        let rest = TextUnits.dropping(1, from: "e\u{301}x")
        #expect(Array(rest.unicodeScalars) == ["\u{301}", "x"])
    }

    // MARK: frames

    @Test func textWithinTheLimitIsOneFrame() {
        #expect(TextUnits.frames(of: "hello", maximumBytes: 5) == ["hello"])
        #expect(TextUnits.frames(of: "hi", maximumBytes: 100) == ["hi"])
    }

    @Test func emptyTextIsOneEmptyFrame() {
        #expect(TextUnits.frames(of: "", maximumBytes: 10) == [""])
    }

    @Test func asciiTextIsSplitAtTheLimit() {
        #expect(TextUnits.frames(of: "abcdefg", maximumBytes: 3) == ["abc", "def", "g"])
    }

    @Test(arguments: [1, 2, 3, 4, 5, 7, 16])
    func framesStayWithinTheLimitAndRejoinToTheInput(maximumBytes: Int) {
        let text: Substring = "aé€🌍e\u{301}x🌍🌍 zé€"
        let frames = TextUnits.frames(of: text, maximumBytes: maximumBytes)
        #expect(frames.joined() == String(text))
        #expect(Array(frames.joined().unicodeScalars) == Array(text.unicodeScalars))
        for frame in frames {
            #expect(!frame.isEmpty)
            // Only a single scalar larger than the limit may exceed it.
            if frame.utf8.count > maximumBytes {
                #expect(frame.unicodeScalars.count == 1)
            }
        }
    }

    @Test func framesNeverSplitAScalar() {
        let frames = TextUnits.frames(of: "🌍🌍🌍", maximumBytes: 6)
        #expect(frames == ["🌍", "🌍", "🌍"])
        for frame in frames {
            #expect(String(frame).utf8.count == 4)
        }
    }

    @Test func aScalarLargerThanTheLimitIsAFrameOfItsOwn() {
        #expect(TextUnits.frames(of: "a🌍b", maximumBytes: 2) == ["a", "🌍", "b"])
    }
}
