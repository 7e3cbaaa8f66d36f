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
        writeEvent(data: data, name: name, into: &buffer)
    }

    /// An event whose `id:` is a stream offset, written without making a string of it.
    public static func writeEvent(data: some StringProtocol, offset: Int, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("id: ")
        writeDecimal(offset, into: &buffer)
        buffer.writeStaticString("\n")
        writeEvent(data: data, name: nil, into: &buffer)
    }

    private static func writeEvent(data: some StringProtocol, name: String?, into buffer: inout ByteBuffer) {
        if let name {
            writeField("event", name, into: &buffer)
        }
        let text = Substring(data)
        let written: Void? = text.utf8.withContiguousStorageIfAvailable { bytes in
            writeDataLines(bytes, into: &buffer)
        }
        if written == nil {
            var copy = String(text)
            copy.withUTF8 { writeDataLines($0, into: &buffer) }
        }
        buffer.writeStaticString("\n")
    }

    /// One `data:` line per line of the text: CR, LF and CRLF each end a line.
    private static func writeDataLines(_ bytes: UnsafeBufferPointer<UInt8>, into buffer: inout ByteBuffer) {
        var line = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") else {
                index += 1
                continue
            }
            writeDataLine(UnsafeBufferPointer(rebasing: bytes[line..<index]), into: &buffer)
            index += 1
            if byte == UInt8(ascii: "\r"), index < bytes.count, bytes[index] == UInt8(ascii: "\n") {
                index += 1
            }
            line = index
        }
        writeDataLine(UnsafeBufferPointer(rebasing: bytes[line...]), into: &buffer)
    }

    private static func writeDataLine(_ line: UnsafeBufferPointer<UInt8>, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("data: ")
        buffer.writeBytes(UnsafeRawBufferPointer(line))
        buffer.writeStaticString("\n")
    }

    private static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        guard value > 0 else {
            buffer.writeStaticString(value == 0 ? "0" : "-")
            if value < 0 { buffer.writeString(String(-value)) }
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { space in
            var remaining = value
            var start = space.count
            while remaining > 0 {
                start -= 1
                space[start] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: space[start...]))
        }
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
