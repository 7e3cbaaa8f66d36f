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
        var lengths: [(bytes: Int, continues: Bool)] = []
        var text = ""
        var bytes = 0
        // The last frame's last chunk goes on in the next frame, which then cannot go as it is.
        var continuing = false
        func flush() {
            guard !lengths.isEmpty else { return }
            if lengths.count == 1, !lengths[0].continues, !continuing, !needsFrame(text) {
                messages.append(text)
            } else {
                var header = start
                for (index, length) in lengths.enumerated() {
                    if index > 0 { header += "," }
                    header += String(length.bytes)
                    if length.continues { header += "+" }
                }
                messages.append(header + "\u{0}" + text)
            }
            continuing = lengths[lengths.count - 1].continues
            lengths.removeAll(keepingCapacity: true)
            text = ""
            bytes = 0
        }
        for piece in pieces {
            let size = piece.utf8.count
            if bytes + size > maximumBytes {
                flush()
            }
            guard size > maximumBytes else {
                lengths.append((size, false))
                text += piece
                bytes += size
                continue
            }
            // Larger than a frame: its parts go one a frame, all but the last marked as going on.
            let parts = TextUnits.frames(of: piece, maximumBytes: maximumBytes)
            for (index, part) in parts.enumerated() {
                lengths.append((part.utf8.count, index < parts.count - 1))
                text += part
                bytes += part.utf8.count
                if index < parts.count - 1 { flush() }
            }
        }
        flush()
        return messages
    }

    /// Whether a whole chunk cannot go as it is: it would be read as a frame or as the end.
    private static func needsFrame(_ text: String) -> Bool {
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
            let afterStart = message.dropFirst(start.count)
            guard let headerEnd = afterStart.firstIndex(of: "\u{0}"),
                let lengths = Self.lengths(afterStart[..<headerEnd])
            else {
                return [message]
            }
            let text = afterStart[afterStart.index(after: headerEnd)...]
            let utf8 = text.utf8
            guard lengths.reduce(0, { $0 + $1.bytes }) == utf8.count else { return [message] }
            var chunks: [Substring] = []
            chunks.reserveCapacity(lengths.count)
            var index = utf8.startIndex
            for length in lengths {
                let end = utf8.index(index, offsetBy: length.bytes)
                // The producer cuts at scalar boundaries; a frame cut elsewhere is one chunk.
                guard end == utf8.endIndex || !UTF8.isContinuation(utf8[end]) else {
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

        private static func lengths(_ header: Substring) -> [(bytes: Int, continues: Bool)]? {
            var lengths: [(bytes: Int, continues: Bool)] = []
            for field in header.split(separator: ",", omittingEmptySubsequences: false) {
                let continues = field.hasSuffix("+")
                guard let bytes = Int(continues ? field.dropLast() : field), bytes >= 0 else { return nil }
                lengths.append((bytes, continues))
            }
            return lengths.isEmpty ? nil : lengths
        }
    }
}
