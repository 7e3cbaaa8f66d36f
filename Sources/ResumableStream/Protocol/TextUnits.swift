/// The unit in which stream offsets (`resumeAt`, `skipCharacters`) are counted.
///
/// The reference implementation counts JavaScript string units, which are UTF-16 code units; a Swift
/// instance must count the same way for the two to resume each other's streams. This is the only
/// place that knows the unit.
enum TextUnits {
    /// The length of `text` in offset units.
    static func count(_ text: Substring) -> Int {
        text.utf16.count
    }

    static func count(_ text: String) -> Int {
        text.utf16.count
    }

    /// `text` without its first `units` units. An offset that falls inside a character that takes
    /// two units (a surrogate pair) moves forward to the end of that character: Swift strings cannot
    /// hold half a pair, and repeating it would duplicate text. Slicing goes through the scalars, so
    /// an offset inside a cluster of combining characters is kept exactly, as JavaScript keeps it.
    static func dropping(_ units: Int, from text: Substring) -> Substring {
        guard units > 0 else { return text }
        let scalars = text.unicodeScalars
        var remaining = units
        var index = scalars.startIndex
        while remaining > 0, index < scalars.endIndex {
            remaining -= UTF16.width(scalars[index])
            index = scalars.index(after: index)
        }
        return Substring(scalars[index...])
    }

    /// Splits `text` into pieces of at most `maximumBytes` bytes of UTF-8 each (a piece is never
    /// empty, so one scalar larger than that is a piece of its own), at scalar boundaries.
    static func frames(of text: Substring, maximumBytes: Int) -> [Substring] {
        guard text.utf8.count > maximumBytes else { return [text] }
        let scalars = text.unicodeScalars
        var frames: [Substring] = []
        var start = scalars.startIndex
        var bytes = 0
        var index = start
        while index < scalars.endIndex {
            let size = UTF8.width(scalars[index])
            if bytes + size > maximumBytes, bytes > 0 {
                frames.append(Substring(scalars[start..<index]))
                start = index
                bytes = 0
            }
            bytes += size
            index = scalars.index(after: index)
        }
        frames.append(Substring(scalars[start...]))
        return frames
    }
}
