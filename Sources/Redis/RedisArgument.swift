import NIOCore

/// One argument of a Redis command. Arguments are binary safe: bytes are sent as they are.
public struct RedisArgument: Sendable, Hashable {
    enum Storage: Sendable, Hashable {
        case string(String)
        case bytes(ByteBuffer)
        case integer(Int)
    }

    let storage: Storage

    public static func string(_ value: String) -> RedisArgument { RedisArgument(storage: .string(value)) }
    public static func bytes(_ value: ByteBuffer) -> RedisArgument { RedisArgument(storage: .bytes(value)) }
    public static func bytes(_ value: some Sequence<UInt8>) -> RedisArgument {
        RedisArgument(storage: .bytes(ByteBuffer(bytes: value)))
    }
    public static func integer(_ value: Int) -> RedisArgument { RedisArgument(storage: .integer(value)) }

    /// How many bytes the argument takes on the wire.
    var byteCount: Int {
        switch storage {
        case .string(let value): return value.utf8.count
        case .bytes(let value): return value.readableBytes
        case .integer(let value): return String(value).utf8.count
        }
    }

    func write(to buffer: inout ByteBuffer) {
        switch storage {
        case .string(let value): buffer.writeString(value)
        case .bytes(let value): buffer.writeImmutableBuffer(value)
        case .integer(let value): buffer.writeString(String(value))
        }
    }
}

extension RedisArgument: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self.storage = .string(value) }
}

extension RedisArgument: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self.storage = .integer(value) }
}
