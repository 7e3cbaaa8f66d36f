import NIOCore

/// What arrives on a subscribed connection (RESP2): messages, confirmations, answers to PING, and
/// error replies. A connection subscribes either channels or shard channels, never both, so the
/// two kinds of push map to the same cases.
enum PubSubPush: Equatable {
    case message(channel: String, payload: ByteBuffer)
    case subscribed(String)
    case unsubscribed(String)
    /// The answer to PING: `["pong", ""]` in subscribe mode, `+PONG` on a connection that has no
    /// subscription (yet, or any more).
    case pong
    case error(String)

    init(_ reply: RedisReply) throws(RedisProtocolError) {
        switch reply {
        case .error(let message):
            self = .error(message)
        case .status("PONG"):
            self = .pong
        case .array(let elements) where elements.count == 2 && elements[0].string == "pong" && elements[1].bytes != nil:
            self = .pong
        case .array(let elements) where elements.count == 3:
            guard let kind = elements[0].string, let channel = elements[1].string else {
                throw RedisProtocolError(message: "a pub/sub push without kind or channel: \(reply)")
            }
            // A shard channel's pushes (Redis Cluster's sharded pub/sub) say the same things.
            switch kind {
            case "message", "smessage":
                guard case .bulk(let payload) = elements[2] else {
                    throw RedisProtocolError(message: "a pub/sub message without payload: \(reply)")
                }
                self = .message(channel: channel, payload: payload)
            case "subscribe", "ssubscribe":
                self = .subscribed(channel)
            case "unsubscribe", "sunsubscribe":
                self = .unsubscribed(channel)
            default:
                throw RedisProtocolError(message: "an unexpected pub/sub push '\(kind)'")
            }
        default:
            throw RedisProtocolError(message: "an unexpected reply on a subscribed connection: \(reply)")
        }
    }
}
