import NIOCore

/// Writes the `text/event-stream` format of the HTML standard (Server-Sent Events).
///
/// A chunk becomes one event. Its text is split into `data:` lines at every line break, because a
/// line break inside a `data:` line would end it; a client joins the lines with LF, so it gets the
/// chunk back exactly, except that CR and CRLF come back as LF: the format has no way to carry a CR.
/// Sources whose text must pass untouched (they speak SSE already, or their clients count offsets
/// over the raw text) use the raw mode instead, which writes chunks as they are.
public enum ServerSentEvents {
    /// An event: `id:` (when given), `event:` (when given), the data lines, and the blank line that
    /// ends it.
    public static func writeEvent(data: some StringProtocol, id: String? = nil, name: String? = nil, into buffer: inout ByteBuffer) {
        if let id {
            writeField("id", id, into: &buffer)
        }
        if let name {
            writeField("event", name, into: &buffer)
        }
        // Byte by byte: CR, LF and CRLF each end a line.
        let text = Substring(data)
        let bytes = text.utf8
        var line = bytes.startIndex
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") else {
                index = bytes.index(after: index)
                continue
            }
            writeField("data", Substring(bytes[line..<index]), into: &buffer)
            index = bytes.index(after: index)
            if byte == UInt8(ascii: "\r"), index < bytes.endIndex, bytes[index] == UInt8(ascii: "\n") {
                index = bytes.index(after: index)
            }
            line = index
        }
        writeField("data", Substring(bytes[line...]), into: &buffer)
        buffer.writeStaticString("\n")
    }

    /// A comment line, which clients ignore: a heartbeat that keeps proxies from closing an idle
    /// stream.
    public static func writeComment(_ text: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(": ")
        buffer.writeString(text.filter { $0 != "\n" && $0 != "\r" && $0 != "\r\n" })
        buffer.writeStaticString("\n\n")
    }

    /// How long a client waits before it reconnects on its own.
    public static func writeRetry(milliseconds: Int, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("retry: ")
        buffer.writeString(String(max(milliseconds, 0)))
        buffer.writeStaticString("\n\n")
    }

    private static func writeField(_ name: StaticString, _ value: some StringProtocol, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(name)
        // One space after the colon, which a client strips: a value that starts with a space keeps it.
        buffer.writeStaticString(": ")
        buffer.writeSubstring(Substring(value))
        buffer.writeStaticString("\n")
    }
}
