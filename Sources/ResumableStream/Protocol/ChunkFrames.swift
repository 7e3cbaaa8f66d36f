/// This project's extension that keeps a stream's chunk boundaries between instances.
///
/// The reference publishes a replay as one string and each live chunk as a message, so a follower
/// on another instance cannot tell where the source's chunks began: its readers would get several
/// chunks merged into one event (two JSON objects in one SSE event, for a JSON-per-chunk source).
/// A producer of this project answers this project's listeners (those that asked for end reasons)
/// with frames that say where each chunk ends; reference listeners get the reference's messages.
///
/// A message that is one whole chunk goes as it is. Any other message is a frame:
/// `NUL "rs-chunks:" <lengths> NUL <text>`, where the lengths are the UTF-8 byte counts of the
/// pieces of `text`, separated by commas; a `+` after the last one says that its chunk goes on in
/// the next frame (a chunk larger than a frame). A chunk that itself starts with NUL or with the
/// end message goes as a frame too, so that no chunk is ever read as something else.
enum ChunkFrames {
    static let start = "\u{0}rs-chunks:"

    /// The messages that carry `pieces` (whole chunks, in order, the first of which may be the end
    /// of one) to a listener of this project, none larger than `maximumBytes` of text plus its
    /// header.
    static func encode(_ pieces: [Substring], maximumBytes: Int) -> [String] {
        var messages: [String] = []
        var frame: [(text: Substring, continues: Bool)] = []
        var bytes = 0
        // The last frame's last chunk goes on in the next frame, which then cannot go as it is.
        var continuing = false
        func flush() {
            guard let last = frame.last else { return }
            if frame.count == 1, !last.continues, !continuing, !needsFrame(last.text) {
                messages.append(String(last.text))
            } else {
                // The header as bytes, then the text, into one string of the right capacity.
                var header = Array(start.utf8)
                for (index, piece) in frame.enumerated() {
                    if index > 0 { header.append(UInt8(ascii: ",")) }
                    header.append(contentsOf: String(piece.text.utf8.count).utf8)
                    if piece.continues { header.append(UInt8(ascii: "+")) }
                }
                header.append(0)
                var message = String(decoding: header, as: UTF8.self)
                message.reserveCapacity(header.count + bytes)
                for piece in frame { message += piece.text }
                messages.append(message)
            }
            continuing = last.continues
            frame.removeAll(keepingCapacity: true)
            bytes = 0
        }
        for piece in pieces {
            let size = piece.utf8.count
            if bytes + size > maximumBytes {
                flush()
            }
            guard size > maximumBytes else {
                frame.append((piece, false))
                bytes += size
                continue
            }
            // Larger than a frame: its parts go one a frame, all but the last marked as going on.
            let parts = TextUnits.frames(of: piece, maximumBytes: maximumBytes)
            for (index, part) in parts.enumerated() {
                frame.append((part, index < parts.count - 1))
                bytes += part.utf8.count
                if index < parts.count - 1 { flush() }
            }
        }
        flush()
        return messages
    }

    /// Whether a whole chunk cannot go as it is: it would be read as a frame or as the end.
    private static func needsFrame(_ text: Substring) -> Bool {
        text.utf8.first == 0 || text.hasPrefix(WireProtocol.endMessage)
    }

    /// Turns a listener's messages back into the source's chunks; holds the first part of a chunk
    /// that goes on in the next frame. A new upstream starts a new decoder.
    struct Decoder: Sendable {
        private var partial = ""

        /// The whole chunks that `message` completes, in order: slices of it, not copies, except
        /// for a chunk that came in parts.
        mutating func decode(_ message: Substring) -> [Substring] {
            guard message.hasPrefix(start) else {
                // A message that is not a frame: a whole chunk (a reference producer's message may
                // hold several, which nothing can tell apart).
                return message.isEmpty ? [] : [message]
            }
            // The header is read as bytes: it holds a few characters per chunk, thousands a frame.
            let utf8 = message.utf8
            let afterStart = utf8.index(utf8.startIndex, offsetBy: start.utf8.count)
            guard let headerEnd = utf8[afterStart...].firstIndex(of: 0),
                let lengths = Self.lengths(utf8[afterStart..<headerEnd])
            else {
                return [message]
            }
            let text = message[utf8.index(after: headerEnd)...]
            guard lengths.reduce(0, { $0 + $1.bytes }) == text.utf8.count else { return [message] }
            var chunks: [Substring] = []
            chunks.reserveCapacity(lengths.count)
            var index = text.utf8.startIndex
            for length in lengths {
                let end = text.utf8.index(index, offsetBy: length.bytes)
                // The producer cuts at scalar boundaries; a frame cut elsewhere is one chunk.
                guard end == text.utf8.endIndex || !UTF8.isContinuation(text.utf8[end]) else {
                    return [message]
                }
                let piece = text[index..<end]
                index = end
                if length.continues {
                    partial += piece
                } else if partial.isEmpty {
                    chunks.append(piece)
                } else {
                    chunks.append(Substring(partial + piece))
                    partial = ""
                }
            }
            return chunks
        }

        /// `12,7,300+`: byte counts, the last one maybe marked as going on.
        private static func lengths(_ header: Substring.UTF8View.SubSequence) -> [(bytes: Int, continues: Bool)]? {
            var lengths: [(bytes: Int, continues: Bool)] = []
            var value = 0
            var digits = 0
            var continues = false
            for byte in header {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9") where !continues:
                    guard digits < 18 else { return nil }
                    value = value * 10 + Int(byte - UInt8(ascii: "0"))
                    digits += 1
                case UInt8(ascii: "+") where digits > 0 && !continues:
                    continues = true
                case UInt8(ascii: ",") where digits > 0:
                    lengths.append((value, continues))
                    (value, digits, continues) = (0, 0, false)
                default:
                    return nil
                }
            }
            guard digits > 0 else { return nil }
            lengths.append((value, continues))
            return lengths
        }
    }
}
