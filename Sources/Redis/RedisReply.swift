import NIOCore

/// A reply from Redis (RESP2), as hiredis parsed it.
///
/// Bulk strings stay bytes: a payload with NUL bytes or invalid UTF-8 comes back exactly as it was
/// stored. Top-level error replies are thrown as ``RedisServerError`` by the client; `.error` only
/// appears nested, for example inside the array that `EVAL` or `EXEC` returns.
public enum RedisReply: Sendable, Hashable {
    case status(String)
    case error(String)
    case integer(Int)
    case bulk(ByteBuffer)
    /// A null bulk string or a null array.
    case null
    case array([RedisReply])
}

extension RedisReply {
    /// The reply as text: a status, or a bulk string decoded as UTF-8 (invalid sequences repaired).
    public var string: String? {
        switch self {
        case .status(let text): return text
        case .bulk(let bytes): return String(buffer: bytes)
        default: return nil
        }
    }

    public var bytes: ByteBuffer? {
        if case .bulk(let bytes) = self { return bytes }
        return nil
    }

    /// An integer reply, or a bulk string that holds a decimal integer (what `GET` returns for a counter).
    public var integer: Int? {
        switch self {
        case .integer(let value): return value
        case .bulk(let bytes): return Int(String(buffer: bytes))
        default: return nil
        }
    }

    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
