import NIOCore

/// Turns bytes that arrive in pieces (an upstream response, a request body) into text, piece by
/// piece: a character split between two pieces is held back until its end arrives, so that no
/// chunk of the stream ends in half a character. Bytes that are not UTF-8 become U+FFFD.
struct UTF8Chunks {
    /// The start of a character whose end has not arrived yet (at most 3 bytes).
    private var pending: [UInt8] = []

    /// The text of what has arrived so far, up to the last whole character.
    mutating func decode(_ buffer: ByteBuffer) -> String {
        var bytes = pending
        bytes.append(contentsOf: buffer.readableBytesView)
        let complete = Self.completeLength(bytes)
        pending = Array(bytes[complete...])
        return String(decoding: bytes[..<complete], as: UTF8.self)
    }

    /// What is left at the end: a character that never got its end is replaced by U+FFFD.
    mutating func finish() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }

    /// The length of the longest prefix that does not end inside a character.
    static func completeLength(_ bytes: [UInt8]) -> Int {
        let count = bytes.count
        for back in 1...min(3, max(count, 1)) where back <= count {
            let byte = bytes[count - back]
            if byte & 0xC0 == 0x80 { continue }  // a continuation byte: look further back
            guard byte >= 0xC0 else { return count }  // ASCII (or stray): nothing is open
            let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2
            return length > back ? count - back : count
        }
        return count
    }
}

/// Bytes that arrive in pieces, as text, one chunk per piece (less what a split character moves
/// to the next piece).
struct TextPieces<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = String
    let base: Base

    init(_ base: Base) {
        self.base = base
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var pieces: Base.AsyncIterator
        var text = UTF8Chunks()
        var ended = false

        mutating func next() async throws -> String? {
            while !ended {
                guard let piece = try await pieces.next() else {
                    ended = true
                    let rest = text.finish()
                    return rest.isEmpty ? nil : rest
                }
                let decoded = text.decode(piece)
                if !decoded.isEmpty { return decoded }
            }
            return nil
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(pieces: base.makeAsyncIterator())
    }
}
