import NIOCore

/// What arrives on a subscribed connection (RESP2): messages, confirmations, and error replies.
enum PubSubPush: Equatable {
    case message(channel: String, payload: ByteBuffer)
    case subscribed(String)
    case unsubscribed(String)
    case error(String)

    init(_ reply: RedisReply) throws(RedisProtocolError) {
        switch reply {
        case .error(let message):
            self = .error(message)
        case .array(let elements) where elements.count == 3:
            guard let kind = elements[0].string, let channel = elements[1].string else {
                throw RedisProtocolError(message: "a pub/sub push without kind or channel: \(reply)")
            }
            switch kind {
            case "message":
                guard case .bulk(let payload) = elements[2] else {
                    throw RedisProtocolError(message: "a pub/sub message without payload: \(reply)")
                }
                self = .message(channel: channel, payload: payload)
            case "subscribe":
                self = .subscribed(channel)
            case "unsubscribe":
                self = .unsubscribed(channel)
            default:
                throw RedisProtocolError(message: "an unexpected pub/sub push '\(kind)'")
            }
        default:
            throw RedisProtocolError(message: "an unexpected reply on a subscribed connection: \(reply)")
        }
    }
}
