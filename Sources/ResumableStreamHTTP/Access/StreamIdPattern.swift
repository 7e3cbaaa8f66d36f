/// Which stream ids a grant covers: an exact id (`log-7`), or a prefix ending in `*`
/// (`chat-42-*` covers `chat-42-` and every id that starts with it; `*` alone covers any id). A
/// `*` anywhere else is part of an exact id.
public struct StreamIdPattern: Codable, Sendable, Hashable, CustomStringConvertible {
    public let text: String

    public init(_ text: String) {
        self.text = text
    }

    /// Byte for byte, as Redis names streams: String's `==` would take two spellings of one
    /// character (`é` and `e` + U+0301) as one id, and they are two streams.
    public func matches(_ id: String) -> Bool {
        guard text.utf8.last == UInt8(ascii: "*") else { return id.utf8.elementsEqual(text.utf8) }
        return id.utf8.starts(with: text.utf8.dropLast())
    }

    public var description: String { text }

    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}
