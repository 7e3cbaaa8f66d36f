import NIOCore
import Redis
import Testing

/// Redis Cluster's routing as pure logic: slots, the slot map, and redirections.
@Suite("Cluster routing")
struct ClusterRoutingTests {
    @Test func slotsAreTheSpecificationsCRC16() {
        // The cluster specification's check value: CRC16("123456789") = 0x31C3.
        #expect(HashSlot.of("123456789") == 0x31C3)
        // Slots that `redis-cli CLUSTER KEYSLOT` gives.
        #expect(HashSlot.of("foo") == 12_182)
        #expect(HashSlot.of("bar") == 5_061)
        #expect(HashSlot.of("") == 0)
    }

    @Test func hashTagsKeepAStreamsKeysOnOneSlot() {
        let slot = HashSlot.of("{user1000}.following")
        #expect(HashSlot.of("{user1000}.followers") == slot)
        #expect(HashSlot.of("user1000") == slot)
        #expect(HashSlot.of("prefix:rs:{stream-7}:log") == HashSlot.of("prefix:rs:{stream-7}:sentinel"))
        // An empty tag does not count: the whole key is hashed.
        #expect(HashSlot.of("foo{}{bar}") != HashSlot.of("bar"))
        #expect(HashSlot.of("foo{}{bar}") == HashSlot.of(bytes: Array("foo{}{bar}".utf8)))
        // The first `{` and the first `}` after it.
        #expect(HashSlot.of("foo{{bar}}zap") == HashSlot.of("{bar"))
        #expect(HashSlot.of("foo{bar}{zap}") == HashSlot.of("bar"))
        // No closing brace: the whole key.
        #expect(HashSlot.of("foo{bar") == HashSlot.of(bytes: Array("foo{bar".utf8)))
    }

    static func node(_ port: Int, _ host: String = "10.0.0.1") -> RedisReply {
        .array([.bulk(ByteBuffer(string: host)), .integer(port), .bulk(ByteBuffer(string: "id-\(port)"))])
    }

    @Test func theSlotMapIsReadFromClusterSlots() throws {
        let reply = RedisReply.array([
            .array([.integer(0), .integer(5_460), Self.node(7000), Self.node(7003)]),
            .array([.integer(5_461), .integer(10_922), Self.node(7001, "")]),
            .array([.integer(10_923), .integer(16_383), Self.node(7002)]),
        ])
        let seed = RedisClusterNode(host: "seed.example", port: 7001)
        let map = try ClusterSlotMap(slotsReply: reply, answeredBy: seed)
        #expect(map.isComplete)
        #expect(map.master(of: 0) == RedisClusterNode(host: "10.0.0.1", port: 7000))
        #expect(map.master(of: 5_460) == RedisClusterNode(host: "10.0.0.1", port: 7000))
        // An empty host is the node that answered.
        #expect(map.master(of: 5_461) == RedisClusterNode(host: "seed.example", port: 7001))
        #expect(map.master(ofKey: "foo") == RedisClusterNode(host: "10.0.0.1", port: 7002))
        #expect(map.nodes.count == 3)
        #expect(map.master(of: 16_384) == nil)

        let partial = try ClusterSlotMap(slotsReply: .array([.array([.integer(0), .integer(99), Self.node(7000)])]), answeredBy: seed)
        #expect(!partial.isComplete)
        #expect(partial.master(of: 100) == nil)
        for malformed: RedisReply in [.integer(1), .array([.array([.integer(5), .integer(1), Self.node(7000)])]), .array([.array([.integer(0)])])] {
            #expect(throws: RedisProtocolError.self) { try ClusterSlotMap(slotsReply: malformed, answeredBy: seed) }
        }
    }

    @Test func redirectionsAreRead() {
        #expect(ClusterRedirection(RedisServerError(message: "MOVED 3999 127.0.0.1:6381")) == .moved(slot: 3_999, to: RedisClusterNode(host: "127.0.0.1", port: 6381)))
        #expect(ClusterRedirection(RedisServerError(message: "ASK 3999 cache-2.example:6379")) == .ask(slot: 3_999, to: RedisClusterNode(host: "cache-2.example", port: 6379)))
        #expect(ClusterRedirection(RedisServerError(message: "MOVED 12 [::1]:7000")) == .moved(slot: 12, to: RedisClusterNode(host: "::1", port: 7000)))
        for other in ["ERR unknown command", "MOVED 99999 h:1", "MOVED x h:1", "MOVED 1 h", "ASK 1 h:p", "CLUSTERDOWN The cluster is down"] {
            #expect(ClusterRedirection(RedisServerError(message: other)) == nil, "\(other)")
        }
    }

    @Test func aMovedSlotIsAskedThereAndTheMapReadAgain() {
        let a = RedisClusterNode(host: "a", port: 1), b = RedisClusterNode(host: "b", port: 2)
        var map = ClusterSlotMap([(0...16_383, a)])
        var routing = ClusterRouting()
        let slot = HashSlot.of("foo")
        #expect(routing.start(slot: slot, map: map, anyNode: b) == .send(to: a, asking: false))
        #expect(routing.answered(RedisServerError(message: "MOVED \(slot) b:2"), map: &map) == .refreshMapThenSend(to: b))
        // The map knows at once, before it is read again.
        #expect(map.master(of: slot) == b)
        #expect(map.master(of: slot == 0 ? 1 : 0) == a)
    }

    @Test func anAskIsForOneCommandAndLeavesTheMap() {
        let a = RedisClusterNode(host: "a", port: 1), b = RedisClusterNode(host: "b", port: 2)
        var map = ClusterSlotMap([(0...16_383, a)])
        var routing = ClusterRouting()
        #expect(routing.answered(RedisServerError(message: "ASK 42 b:2"), map: &map) == .send(to: b, asking: true))
        #expect(map.master(of: 42) == a)
    }

    @Test func otherErrorsAreAnswersAndRedirectionsAreBounded() {
        let a = RedisClusterNode(host: "a", port: 1)
        var map = ClusterSlotMap([(0...16_383, a)])
        var routing = ClusterRouting(limit: 2)
        let wrongType = RedisServerError(message: "WRONGTYPE Operation against a key holding the wrong kind of value")
        #expect(routing.answered(wrongType, map: &map) == .fail(wrongType))
        #expect(routing.answered(RedisServerError(message: "ASK 1 a:1"), map: &map) == .send(to: a, asking: true))
        #expect(routing.answered(RedisServerError(message: "ASK 1 a:1"), map: &map) == .send(to: a, asking: true))
        guard case .fail(let error) = routing.answered(RedisServerError(message: "ASK 1 a:1"), map: &map) else {
            Issue.record("a third redirection was followed")
            return
        }
        #expect(error.message.contains("after 2 redirections"))
        // Without a map entry, the command goes to any node, which redirects it.
        #expect(ClusterRouting().start(slot: 7, map: ClusterSlotMap([]), anyNode: a) == .send(to: a, asking: false))
    }
}
