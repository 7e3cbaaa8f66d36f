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
        writeID(offset: offset, into: &buffer)
        writeEvent(data: data, name: nil, into: &buffer)
    }

    private static func writeEvent(data: some StringProtocol, name: String?, into buffer: inout ByteBuffer) {
        if let name {
            writeField("event", name, into: &buffer)
        }
        var lines = DataLines()
        lines.write(Substring(data), into: &buffer, limit: .max)
    }

    /// The `id:` line of an event whose id is a stream offset.
    static func writeID(offset: Int, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("id: ")
        writeDecimal(offset, into: &buffer)
        buffer.writeStaticString("\n")
    }

    /// An event's data lines, and the blank line that ends it, written in one go or over several
    /// writes: where the last write stopped. A line may be cut anywhere between writes; the
    /// client sees the same bytes either way. CR, LF and CRLF each end a line (a CRLF cut between
    /// two writes too), because a line break inside a `data:` line would end it.
    struct DataLines: Sendable {
        /// UTF-8 bytes of the text written so far.
        private(set) var written = 0
        private(set) var isComplete = false
        /// The current line's `data: ` is written.
        private var inLine = false
        /// The last byte ended a line with CR: an LF right after it belongs to it.
        private var afterCR = false

        /// Writes on from where the last call stopped, until the buffer holds `limit` bytes or the
        /// text ends; the buffer may then hold up to 14 bytes more (a field name, the end of the
        /// event).
        mutating func write(_ text: Substring, into buffer: inout ByteBuffer, limit: Int) {
            let done: Void? = text.utf8.withContiguousStorageIfAvailable { write($0, into: &buffer, limit: limit) }
            if done == nil {
                var copy = String(text)
                copy.withUTF8 { write($0, into: &buffer, limit: limit) }
            }
        }

        private mutating func write(_ bytes: UnsafeBufferPointer<UInt8>, into buffer: inout ByteBuffer, limit: Int) {
            var index = written
            while index < bytes.count, buffer.readableBytes < limit {
                let byte = bytes[index]
                if afterCR {
                    afterCR = false
                    if byte == UInt8(ascii: "\n") {
                        index += 1
                        continue
                    }
                }
                if !inLine {
                    buffer.writeStaticString("data: ")
                    inLine = true
                }
                if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                    buffer.writeStaticString("\n")
                    inLine = false
                    afterCR = byte == UInt8(ascii: "\r")
                    index += 1
                    continue
                }
                // The rest of the line, or what room is left of it.
                let room = max(limit - buffer.readableBytes, 1)
                var end = index
                while end < bytes.count, end - index < room, bytes[end] != UInt8(ascii: "\n"), bytes[end] != UInt8(ascii: "\r") {
                    end += 1
                }
                buffer.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[index..<end])))
                index = end
            }
            written = index
            guard index == bytes.count, !isComplete else { return }
            // The last line, even when empty (the text ended with a line break, or is empty), and the
            // blank line that ends the event.
            if !inLine {
                buffer.writeStaticString("data: ")
            }
            buffer.writeStaticString("\n\n")
            isComplete = true
        }
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
