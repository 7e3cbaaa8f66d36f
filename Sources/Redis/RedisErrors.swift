import NIOCore

/// An error reply from Redis (`-ERR ...`, `-WRONGTYPE ...`, `-NOPERM ...`), with Redis's own text.
public struct RedisServerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The message as Redis sent it, for example `ERR value is not an integer or out of range`.
    public let message: String

    public init(message: String) { self.message = message }

    /// The first word of the message: `ERR`, `WRONGTYPE`, `NOSCRIPT`, `WRONGPASS`, ...
    public var code: Substring { message.prefix(while: { $0 != " " }) }

    public var description: String { "Redis replied with an error: \(message)" }
}

/// The connection to Redis failed, or a command could not be answered on it.
public enum RedisConnectionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The connection closed (or was cut) while the command was in flight: it may or may not have run.
    case connectionClosed
    /// No reply came within the command timeout; the connection was closed and will be re-opened.
    case commandTimeout(TimeAmount)
    /// No connection could be established within the connect timeout.
    case connectTimeout(TimeAmount)
    /// The connection could not be established (refused, unknown host, ...).
    case connectFailed(String)
    /// Redis rejected the credentials, or the database number, when the connection opened.
    case handshakeFailed(String)
    /// The client or subscriber was closed by its owner.
    case closed

    public var description: String {
        switch self {
        case .connectionClosed: return "the connection to Redis closed while the command was in flight"
        case .commandTimeout(let timeout): return "Redis did not answer within \(timeout)"
        case .connectTimeout(let timeout): return "could not connect to Redis within \(timeout)"
        case .connectFailed(let reason): return "could not connect to Redis: \(reason)"
        case .handshakeFailed(let reason): return "Redis refused the connection's setup: \(reason)"
        case .closed: return "the Redis client was closed"
        }
    }
}

/// Redis sent bytes that are not RESP; the connection is closed.
public struct RedisProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public var description: String { "Redis protocol error: \(message)" }
}

/// A Redis URL or option that cannot be used, and why.
public struct RedisConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(message: String) { self.message = message }

    public var description: String { "invalid Redis configuration: \(message)" }
}

/// A cluster node stopped serving a shard channel's slot (it migrated to another node) and dropped
/// the channel: the subscription ends with this, and a ``RedisClusterSubscriber`` subscribes the
/// channel again where its slot lives now.
public struct RedisShardChannelMoved: Error, Sendable, Hashable, CustomStringConvertible {
    public let channel: String

    public init(channel: String) { self.channel = channel }

    public var description: String { "the node no longer serves the shard channel \(channel)" }
}
