import Foundation
import NIOCore
@testable import Redis
import TestSupport
import Testing

/// The cluster client and the sharded subscriber against real three-master clusters: routing by
/// slot, `ASK` while a slot migrates, `MOVED` after, and shard channels that follow their slot.
@Suite("Redis Cluster client", .timeLimit(.minutes(2)))
struct RedisClusterClientTests {
    @Test func everyKeyGoesToTheMasterOfItsSlot() async throws {
        let cluster = try await PrivateRedisCluster.start()
        defer { cluster.stop() }
        try await using(RedisClusterClient.connect(seeds: ClusterSeeds(url: cluster.seedsURL)), close: { await $0.close() }) { client throws in
            let keys = (0..<60).map { "routed-\($0)" }
            for key in keys { try await client.set(key, to: .string("v-\(key)")) }
            for key in keys { #expect(try await client.getString(key) == "v-\(key)") }
            // Each key is on its slot's master; the keys spread over all three.
            var owners: Set<Int> = []
            for key in keys {
                let owner = try await cluster.node(servingSlot: HashSlot.of(key))
                owners.insert(owner)
                try await using(cluster.client(node: owner), close: { await $0.close() }) { node throws in
                    #expect(try await node.send("EXISTS", .string(key)).integer == 1, "\(key) is not on node \(owner), its slot's master")
                }
            }
            #expect(owners.count == 3)
            // Commands without a key go anywhere; a script runs where its first key lives.
            #expect(try await client.ping() == "PONG")
            let script = RedisScript("return redis.call('GET', KEYS[1])")
            #expect(try await client.run(script, keys: ["routed-7"]).string == "v-routed-7")
            try await client.pingAnyMaster()
        }
    }

    /// While a slot migrates, a key that is not at the source yet is written at the target through
    /// `ASK`; once it has moved, the old master's `MOVED` sends the client there, and its map follows.
    @Test func asksWhileASlotMigratesAndMovesAfterwards() async throws {
        let cluster = try await PrivateRedisCluster.start()
        defer { cluster.stop() }
        try await using(RedisClusterClient.connect(seeds: ClusterSeeds(url: cluster.seedsURL)), close: { await $0.close() }) { client throws in
            let slot = HashSlot.of("{migrating}")
            try await client.set("{migrating}old", to: .string("before"))
            let source = try await cluster.node(servingSlot: slot)
            let target = (source + 1) % cluster.nodes.count
            try await cluster.migrate(slot: slot, to: target) {
                // The old key is still at the source, which serves it; a new one goes to the target.
                #expect(try await client.getString("{migrating}old") == "before")
                try await client.set("{migrating}new", to: .string("asked"))
                try await using(cluster.client(node: target), close: { await $0.close() }) { node throws in
                    _ = try await node.send("ASKING")
                    #expect(try await node.getString("{migrating}new") == "asked")
                }
            }
            #expect(client.slotMap.master(of: slot)?.port == cluster.nodes[source].port)
            #expect(try await client.getString("{migrating}old") == "before")
            #expect(try await client.getString("{migrating}new") == "asked")
            #expect(client.slotMap.master(of: slot)?.port == cluster.nodes[target].port)
        }
    }

    /// A shard channel's subscription follows its slot to another master: the reader is told of the
    /// move, then gets what is published there.
    @Test func aShardChannelFollowsItsSlot() async throws {
        let cluster = try await PrivateRedisCluster.start()
        defer { cluster.stop() }
        try await using(RedisClusterClient.connect(seeds: ClusterSeeds(url: cluster.seedsURL)), close: { await $0.close() }) { client throws in
            let subscriber = RedisClusterSubscriber(cluster: client)
            try await using(subscriber, close: { await $0.close() }) { subscriber throws in
                let channel = "news"
                let subscription = try await subscriber.subscribe(to: channel)
                defer { subscription.unsubscribe() }
                var events = subscription.makeAsyncIterator()
                #expect(try await client.spublish(.string("one"), to: channel) == 1)
                #expect(try await events.next() == .message(ByteBuffer(string: "one")))

                let slot = HashSlot.of(channel)
                let source = try await cluster.node(servingSlot: slot)
                try await cluster.migrate(slot: slot, to: (source + 1) % cluster.nodes.count)
                #expect(try await events.next() == .gap(.slotMoved))
                // SPUBLISH follows MOVED to the new master, where the channel is subscribed again.
                #expect(try await client.spublish(.string("two"), to: channel) == 1)
                #expect(try await events.next() == .message(ByteBuffer(string: "two")))
            }
        }
    }

    @Test func theSharedClusterOfTheTestCommandServesCommands() async throws {
        guard let url = ProcessInfo.processInfo.environment["REDIS_CLUSTER_URL"] else { return }
        try await using(RedisClusterClient.connect(seeds: ClusterSeeds(url: url)), close: { await $0.close() }) { client throws in
            #expect(client.slotMap.isComplete)
            #expect(client.slotMap.nodes.count == 3)
        }
    }

    // MARK: pure logic

    @Test func seedsAreOneWholeURLThenNodes() throws {
        let seeds = try ClusterSeeds(url: "redis://:secret@10.0.0.1:7000, 10.0.0.2:7001,redis://10.0.0.3,10.0.0.1:7000")
        #expect(seeds.configuration.password == "secret")
        #expect(seeds.nodes == [
            RedisClusterNode(host: "10.0.0.1", port: 7000),
            RedisClusterNode(host: "10.0.0.2", port: 7001),
            RedisClusterNode(host: "10.0.0.3", port: 6379),
        ])
        #expect(try ClusterSeeds(url: "rediss://h:1,h:2").configuration.tls != nil)
        #expect(throws: RedisConfigurationError.self) { try ClusterSeeds(url: "redis://h:1,,h:2") }
        #expect(throws: RedisConfigurationError.self) { try ClusterSeeds(url: "") }
        #expect(throws: RedisConfigurationError.self) { try ClusterSeeds(url: "redis://h:1,h:99999") }
    }

    @Test func aCommandIsRoutedByItsKeyOrNotAtAll() {
        #expect(RedisClusterClient.slot(of: ["GET", "{a}b"]) == HashSlot.of("a"))
        #expect(RedisClusterClient.slot(of: ["spublish", "chan", "x"]) == HashSlot.of("chan"))
        #expect(RedisClusterClient.slot(of: ["EVALSHA", "abc", 2, "k1", "k2", "arg"]) == HashSlot.of("k1"))
        #expect(RedisClusterClient.slot(of: ["EVALSHA", "abc", 0, "arg"]) == nil)
        #expect(RedisClusterClient.slot(of: ["SCRIPT", "LOAD", "return 1"]) == nil)
        #expect(RedisClusterClient.slot(of: ["PING"]) == nil)
        #expect(RedisClusterClient.slot(of: [.bytes(ByteBuffer(string: "XRANGE")), .bytes(ByteBuffer(string: "log")), "-", "+"]) == HashSlot.of("log"))
    }

    @Test func shardedPushesSayWhatTheirPlainOnesSay() throws {
        let message = RedisReply.array([.bulk(ByteBuffer(string: "smessage")), .bulk(ByteBuffer(string: "c")), .bulk(ByteBuffer(string: "p"))])
        #expect(try PubSubPush(message) == .message(channel: "c", payload: ByteBuffer(string: "p")))
        #expect(try PubSubPush(.array([.bulk(ByteBuffer(string: "ssubscribe")), .bulk(ByteBuffer(string: "c")), .integer(1)])) == .subscribed("c"))
        #expect(try PubSubPush(.array([.bulk(ByteBuffer(string: "sunsubscribe")), .bulk(ByteBuffer(string: "c")), .integer(0)])) == .unsubscribed("c"))
    }

    @Test func aChannelTheNodeDropsEndsItsConsumersButAnAnsweredUnsubscribeDoesNot() {
        var table = SubscriptionTable<String>()
        _ = table.connectionEstablished()
        _ = table.add("reader", id: 1, to: "moving")
        _ = table.subscribeConfirmed("moving")
        // Nobody asked: the node dropped the channel (its slot migrated).
        #expect(table.droppedByServer("moving") == ["reader"])
        #expect(table.consumerCounts["moving"] == nil)
        // An unsubscribe of ours is answered the usual way.
        _ = table.add("other", id: 2, to: "staying")
        _ = table.subscribeConfirmed("staying")
        #expect(table.remove(id: 2, from: "staying") == .unsubscribe("staying"))
        #expect(table.droppedByServer("staying") == nil)
        // A channel being subscribed is left to its own commands.
        _ = table.add("late", id: 3, to: "pending")
        #expect(table.droppedByServer("pending") == [])
    }
}
