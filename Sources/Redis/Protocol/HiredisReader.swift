import CHiredis
import NIOCore

/// hiredis's reply parser (`redisReader`): feed it bytes as they arrive, take out whole replies.
///
/// Owned by one channel handler and used on its event loop only.
final class HiredisReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        // redisReaderCreate fails only when malloc does.
        guard let reader = redisReaderCreate() else {
            fatalError("hiredis could not allocate a reply reader")
        }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    func feed(_ bytes: UnsafeRawBufferPointer) throws(RedisProtocolError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        guard redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count) == REDIS_OK else {
            throw RedisProtocolError(message: String(cString: chiredis_reader_error(reader)))
        }
    }

    /// The next complete reply, or `nil` until more bytes arrive.
    func next(allocator: ByteBufferAllocator) throws(RedisProtocolError) -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            throw RedisProtocolError(message: String(cString: chiredis_reader_error(reader)))
        }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return try Self.convert(raw.assumingMemoryBound(to: redisReply.self), allocator: allocator)
    }

    private static func convert(
        _ reply: UnsafeMutablePointer<redisReply>,
        allocator: ByteBufferAllocator
    ) throws(RedisProtocolError) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STATUS:
            return .status(Self.text(value))
        case REDIS_REPLY_ERROR:
            return .error(Self.text(value))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(value.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_STRING:
            var buffer = allocator.buffer(capacity: value.len)
            if value.len > 0, let string = value.str {
                buffer.writeBytes(UnsafeRawBufferPointer(start: string, count: value.len))
            }
            return .bulk(buffer)
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                guard let element = value.element[index] else {
                    throw RedisProtocolError(message: "hiredis returned an array with a missing element")
                }
                elements.append(try convert(element, allocator: allocator))
            }
            return .array(elements)
        default:
            // RESP3 types (hiredis 1.x parses them); this client never asks for RESP3.
            throw RedisProtocolError(message: "unexpected RESP reply type \(value.type)")
        }
    }

    private static func text(_ value: redisReply) -> String {
        guard value.len > 0, let string = value.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: string, count: value.len), as: UTF8.self)
    }
}
