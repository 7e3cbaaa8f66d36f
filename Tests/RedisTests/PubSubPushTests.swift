import NIOCore
import Testing

@testable import Redis

@Suite("Pub/sub push parsing")
struct PubSubPushTests {
    @Test func parsesAMessageKeepingItsPayloadAsBytes() throws {
        let payload = ByteBuffer(bytes: [0x00, 0xFF, 0x0D, 0x0A])
        let reply = RedisReply.array([bulk("message"), bulk("news"), .bulk(payload)])
        #expect(try PubSubPush(reply) == .message(channel: "news", payload: payload))
    }

    @Test func parsesASubscribeConfirmation() throws {
        #expect(try PubSubPush(.array([bulk("subscribe"), bulk("news"), .integer(1)])) == .subscribed("news"))
    }

    @Test func parsesAnUnsubscribeConfirmation() throws {
        #expect(try PubSubPush(.array([bulk("unsubscribe"), bulk("news"), .integer(0)])) == .unsubscribed("news"))
    }

    @Test func parsesTheAnswerToPingInSubscribeModeAndOutsideIt() throws {
        #expect(try PubSubPush(.array([bulk("pong"), bulk("")])) == .pong)
        #expect(try PubSubPush(.status("PONG")) == .pong)
    }

    @Test func parsesAnErrorReply() throws {
        #expect(try PubSubPush(.error("NOPERM no permissions")) == .error("NOPERM no permissions"))
    }

    @Test(arguments: [
        RedisReply.status("OK"),
        .integer(1),
        .null,
        .bulk(ByteBuffer(string: "message")),
        .array([]),
        .array([bulk("message"), bulk("news")]),
        .array([bulk("pmessage"), bulk("n*"), bulk("news"), bulk("hi")]),
        .array([bulk("psubscribe"), bulk("n*"), .integer(1)]),
        .array([.integer(1), bulk("news"), bulk("hi")]),
        .array([bulk("message"), .null, bulk("hi")]),
        .array([bulk("message"), bulk("news"), .integer(1)]),
        .array([bulk("message"), bulk("news"), .null]),
        .array([bulk("pong")]),
        .array([bulk("pong"), .integer(1)]),
        .array([bulk("ping"), bulk("")]),
        .status("PING"),
    ])
    func rejectsAnyOtherShape(_ reply: RedisReply) {
        #expect(throws: RedisProtocolError.self) { try PubSubPush(reply) }
    }
}

private func bulk(_ text: String) -> RedisReply {
    .bulk(ByteBuffer(string: text))
}
