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

    /// Copies the argument's wire bytes into `target`, which holds exactly ``byteCount`` bytes.
    func copy(to target: UnsafeMutableRawBufferPointer) {
        switch storage {
        case .string(let value): Self.copy(value, to: target)
        case .bytes(let value): value.withUnsafeReadableBytes { target.copyMemory(from: $0) }
        case .integer(let value): Self.copy(String(value), to: target)
        }
    }

    private static func copy(_ text: String, to target: UnsafeMutableRawBufferPointer) {
        let contiguous: Void? = text.utf8.withContiguousStorageIfAvailable { target.copyMemory(from: UnsafeRawBufferPointer($0)) }
        if contiguous == nil {
            target.copyBytes(from: text.utf8)
        }
    }
}

extension RedisArgument: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self.storage = .string(value) }
}

extension RedisArgument: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self.storage = .integer(value) }
}

extension RedisArgument {
    /// The argument's wire bytes (for a cluster client that hashes a key).
    var wireBytes: [UInt8] {
        switch storage {
        case .string(let value): return Array(value.utf8)
        case .bytes(let value): return Array(value.readableBytesView)
        case .integer(let value): return Array(String(value).utf8)
        }
    }

    /// The argument as text, when it is text or a number (a command's name, a count).
    var text: String? {
        switch storage {
        case .string(let value): return value
        case .bytes(let value): return String(decoding: value.readableBytesView, as: UTF8.self)
        case .integer(let value): return String(value)
        }
    }
}
