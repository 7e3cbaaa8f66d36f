import NIOCore

/// One chunk of an HTTP/1.1 chunked body, framed in the buffer that holds its data: the size line
/// goes into room left in front of the data, the CRLF behind it, so that a chunk is one buffer and
/// one write (NIO's HTTP/1 encoder frames each body part in three).
enum HTTPChunk {
    /// Room for the size line (16 hex digits and CRLF) and the closing CRLF.
    static let framing = sizeLineRoom + 2
    private static let sizeLineRoom = 18

    /// A buffer for up to `capacity` bytes of data, within `capacity + framing` bytes, with the
    /// room in front that ``frame(_:allocator:)`` fills.
    static func makeBuffer(capacity: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: capacity + framing)
        buffer.moveWriterIndex(forwardBy: sizeLineRoom)
        buffer.moveReaderIndex(forwardBy: sizeLineRoom)
        return buffer
    }

    /// The readable bytes of `buffer` framed as one chunk (size in lowercase hex, no padding), or
    /// `nil` when there are none: an empty chunk would end the body. Taken, not borrowed: a buffer
    /// the caller still held would be copied to write the size line.
    static func frame(_ data: consuming ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        var buffer = data
        let length = buffer.readableBytes
        guard length > 0 else { return nil }
        var digits = 1
        while length >> (4 * digits) > 0 { digits += 1 }
        if buffer.readerIndex < digits + 2 {
            // Built without room in front: copied behind a size line.
            let unframed = buffer
            buffer = makeBuffer(capacity: length, allocator: allocator)
            buffer.writeImmutableBuffer(unframed)
        }
        let start = buffer.readerIndex - digits - 2
        for index in 0..<digits {
            let nibble = (length >> (4 * (digits - 1 - index))) & 0xF
            buffer.setInteger(UInt8(nibble < 10 ? 48 + nibble : 87 + nibble), at: start + index)
        }
        buffer.setInteger(UInt16(0x0D0A), at: start + digits)
        buffer.moveReaderIndex(to: start)
        buffer.writeInteger(UInt16(0x0D0A))
        return buffer
    }
}
