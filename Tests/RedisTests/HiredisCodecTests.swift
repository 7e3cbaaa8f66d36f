import NIOCore
import Testing

@testable import Redis

@Suite("hiredis command encoder and reply reader")
struct HiredisCodecTests {
    // MARK: Encoder

    @Test func encodesACommandAsAnArrayOfBulkStrings() {
        #expect(encoded(["SET", "k", "v"]) == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n".utf8))
    }

    @Test func encodesNulAndHighBytesAsTheyAre() {
        let payload: [UInt8] = [0x00, 0x61, 0x00] + Array(0x80...0xFF)
        let expected = Array("*2\r\n$3\r\nSET\r\n$\(payload.count)\r\n".utf8) + payload + Array("\r\n".utf8)
        #expect(encoded(["SET", .bytes(payload)]) == expected)
    }

    @Test func encodesAnEmptyArgument() {
        #expect(encoded(["ECHO", ""]) == Array("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n".utf8))
        #expect(encoded(["ECHO", .bytes([UInt8]())]) == Array("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n".utf8))
    }

    @Test func encodesIntegersAsDecimalText() {
        #expect(encoded(["INCRBY", "k", 42]) == Array("*3\r\n$6\r\nINCRBY\r\n$1\r\nk\r\n$2\r\n42\r\n".utf8))
        #expect(encoded(["INCRBY", "k", -7]) == Array("*3\r\n$6\r\nINCRBY\r\n$1\r\nk\r\n$2\r\n-7\r\n".utf8))
    }

    @Test func encodesTheLengthOfAOneMebibyteArgument() {
        let payload = [UInt8](repeating: 0x78, count: 1 << 20)
        let bytes = encoded(["SET", "k", .bytes(payload)])
        let header = Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n".utf8)
        #expect(bytes.count == header.count + payload.count + 2)
        #expect(Array(bytes.prefix(header.count)) == header)
        #expect(bytes.dropFirst(header.count).prefix(payload.count).allSatisfy { $0 == 0x78 })
        #expect(Array(bytes.suffix(2)) == Array("\r\n".utf8))
    }

    @Test func appendsAfterBytesAlreadyInTheBuffer() {
        var buffer = ByteBuffer(string: "*1\r\n$4\r\nPING\r\n")
        HiredisCommandEncoder.encode(["GET", "k"], into: &buffer)
        #expect(buffer == ByteBuffer(string: "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"))
    }

    // MARK: Reader

    @Test func readsAStatus() throws {
        #expect(try readAll("+OK\r\n") == [.status("OK")])
    }

    @Test func readsAnError() throws {
        #expect(try readAll("-ERR wrong\r\n") == [.error("ERR wrong")])
    }

    @Test func readsIntegers() throws {
        #expect(try readAll(":42\r\n:-9000000000\r\n:0\r\n") == [.integer(42), .integer(-9_000_000_000), .integer(0)])
    }

    @Test func readsABulkString() throws {
        #expect(try readAll("$5\r\nhello\r\n") == [.bulk(ByteBuffer(string: "hello"))])
    }

    @Test func readsAnEmptyBulkString() throws {
        #expect(try readAll("$0\r\n\r\n") == [.bulk(ByteBuffer())])
    }

    @Test func readsABulkStringWithNulAndCRLFInside() throws {
        let payload: [UInt8] = [0x61, 0x00, 0x0D, 0x0A, 0x62, 0xFF]
        let wire = Array("$6\r\n".utf8) + payload + Array("\r\n".utf8)
        #expect(try readAll(wire) == [.bulk(ByteBuffer(bytes: payload))])
    }

    @Test func readsNullBulkAndNullArrayAsNull() throws {
        #expect(try readAll("$-1\r\n*-1\r\n") == [.null, .null])
    }

    @Test func readsNestedArrays() throws {
        let wire = "*3\r\n:1\r\n*2\r\n$1\r\na\r\n*0\r\n$-1\r\n"
        let expected = RedisReply.array([.integer(1), .array([.bulk(ByteBuffer(string: "a")), .array([])]), .null])
        #expect(try readAll(wire) == [expected])
    }

    @Test func readsSeveralRepliesFromOneFeed() throws {
        #expect(try readAll("+OK\r\n:1\r\n$1\r\nx\r\n") == [.status("OK"), .integer(1), .bulk(ByteBuffer(string: "x"))])
    }

    @Test func waitsForTheLastByteOfAReplySplitAcrossFeeds() throws {
        let wire = Array("*2\r\n$3\r\nfoo\r\n:-5\r\n".utf8)
        let reader = HiredisReader()
        for byte in wire.dropLast() {
            try feed(reader, [byte])
            #expect(try reader.next(allocator: allocator) == nil)
        }
        try feed(reader, [wire.last!])
        #expect(try reader.next(allocator: allocator) == .array([.bulk(ByteBuffer(string: "foo")), .integer(-5)]))
        #expect(try reader.next(allocator: allocator) == nil)
    }

    @Test func rejectsBytesThatAreNotRESP() throws {
        let reader = HiredisReader()
        #expect(throws: RedisProtocolError.self) {
            try feed(reader, Array("?x\r\n".utf8))
            _ = try reader.next(allocator: allocator)
        }
    }

    @Test func readsBackAnEncodedCommand() throws {
        let binary: [UInt8] = [0x00, 0x0D, 0x0A, 0xFF]
        let bytes = encoded(["SET", .bytes(binary), "", 12])
        let expected = RedisReply.array([
            .bulk(ByteBuffer(string: "SET")), .bulk(ByteBuffer(bytes: binary)), .bulk(ByteBuffer()),
            .bulk(ByteBuffer(string: "12")),
        ])
        #expect(try readAll(bytes) == [expected])
    }

    // MARK: Helpers

    private let allocator = ByteBufferAllocator()

    private func encoded(_ arguments: [RedisArgument]) -> [UInt8] {
        var buffer = ByteBuffer()
        HiredisCommandEncoder.encode(arguments, into: &buffer)
        return Array(buffer.readableBytesView)
    }

    private func feed(_ reader: HiredisReader, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try reader.feed($0) }
    }

    /// Feeds `bytes` in one go and takes out every complete reply.
    private func readAll(_ bytes: [UInt8]) throws -> [RedisReply] {
        let reader = HiredisReader()
        try feed(reader, bytes)
        var replies: [RedisReply] = []
        while let reply = try reader.next(allocator: allocator) {
            replies.append(reply)
        }
        return replies
    }

    private func readAll(_ text: String) throws -> [RedisReply] {
        try readAll(Array(text.utf8))
    }
}
