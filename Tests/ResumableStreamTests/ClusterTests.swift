import Redis
import Synchronization
@testable import ResumableStream
import TestSupport
import Testing

/// The coordinator on a real three-master Redis Cluster of its own: streams on every shard, their
/// names on one node each, sharded pub/sub, and a slot that migrates under a live stream.
@Suite("Redis Cluster", .timeLimit(.minutes(2)))
struct ClusterTests {
    /// One id per master, found by hashing candidates.
    private static func idPerShard(_ deployment: Deployment, _ cluster: PrivateRedisCluster) throws -> [Int: String] {
        let map = try #require(deployment.cluster).slotMap
        var ids: [Int: String] = [:]
        for candidate in 0..<1_000 where ids.count < cluster.nodes.count {
            let id = "shard-\(candidate)"
            let node = try cluster.owner(of: HashSlot.of(WireProtocol.tag(id)), in: map)
            if ids[node] == nil { ids[node] = id }
        }
        return ids
    }

    /// Streams on all three shards, created on one instance and followed and resumed on another;
    /// the shards see `SPUBLISH` and never `PUBLISH`, and each stream's keys are on its own node.
    @Test(arguments: [ResumableStreamDurability.memory, .redis])
    func streamsOnEveryShardAreFollowedAndResumedOnAnotherInstance(durability: ResumableStreamDurability) async throws {
        let cluster = try await PrivateRedisCluster.start()
        defer { cluster.stop() }
        var nodeClients: [RedisClient] = []
        for index in cluster.nodes.indices { nodeClients.append(try await cluster.client(node: index)) }
        try await using(nodeClients, close: { for client in $0 { await client.close() } }) { admins in
        try await Deployment.with(.cluster, redisURL: cluster.seedsURL, options: {
            $0.durability = durability
            $0.replayGrace = .seconds(30)
        }) { deployment throws in
            let ids = try Self.idPerShard(deployment, cluster)
            #expect(ids.count == 3)
            for admin in admins { _ = try await admin.send("CONFIG", "RESETSTAT") }

            for (node, id) in ids.sorted(by: { $0.key < $1.key }) {
                let source = ManualSource()
                let producer = try await deployment.contexts[0].resumableStream(id, source: source.make).reader()
                source.send("\(id): ", "one ")
                let follower = try await deployment.contexts[1].resumeExistingStream(id).reader()
                var followed = follower.makeAsyncIterator()
                var text = ""
                while text.utf16.count < "\(id): one ".utf16.count, let chunk = try await followed.next() { text += chunk.text }
                source.send("two")

                // Every name of the stream is on the node that serves its slot, and nowhere else.
                let tag = "{\(WireProtocol.tag(id))}"
                for (index, admin) in admins.enumerated() {
                    let keys = try await admin.send("KEYS", .string("\(deployment.prefix):rs:\(tag):*")).array ?? []
                    if index == node {
                        #expect(keys.count == (durability == .redis ? 3 : 1), "the keys of \(id) on node \(index): \(keys)")
                    } else {
                        #expect(keys.isEmpty, "\(id) has keys on node \(index), not its own node \(node): \(keys)")
                    }
                }
                source.finish()
                #expect(try await producer.text() == "\(id): one two")
                while let chunk = try await followed.next() { text += chunk.text }
                #expect(text == "\(id): one two")
                // Resumed on the other instance, from inside the text.
                let resumed = try await deployment.contexts[1].resumeExistingStream(id, resumeAt: 2).reader().text()
                #expect(resumed == String("\(id): one two".dropFirst(2)))
            }
            for (index, admin) in admins.enumerated() {
                let calls = try await PrivateRedisServer.commandCalls(admin)
                #expect((calls["spublish"] ?? 0) > 0, "node \(index): \(calls)")
                #expect(calls["publish"] == nil, "node \(index): \(calls)")
            }
        }
        }
    }

    /// The slot of a live stream moves to another master (keys migrated as `redis-cli --cluster
    /// reshard` does) while chunks keep coming: the creator and a follower on another instance
    /// both get the whole text.
    @Test(arguments: [ResumableStreamDurability.memory, .redis])
    func aSlotMigratedUnderALiveStreamLosesNothing(durability: ResumableStreamDurability) async throws {
        let cluster = try await PrivateRedisCluster.start()
        defer { cluster.stop() }
        try await Deployment.with(.cluster, redisURL: cluster.seedsURL, options: {
            $0.durability = durability
            $0.replayGrace = .seconds(30)
            $0.watchdogInterval = .milliseconds(200)
        }) { deployment throws in
            let id = "migrating"
            let slot = HashSlot.of(WireProtocol.tag(id))
            try await Self.streamThrough(id, in: deployment) { feed in
                let from = try await cluster.node(servingSlot: slot)
                let to = (from + 1) % cluster.nodes.count
                try await cluster.migrate(slot: slot, to: to) { feed.send(10) }
                #expect(try await cluster.node(servingSlot: slot) == to)
                // The producer's request channel followed its slot: the old master dropped it, and
                // the producer subscribed it again on the new one.
                let requests = deployment.wire.requestChannel(id)
                try await using(try await cluster.client(node: to), close: { await $0.close() }) { target in
                    try await eventually {
                        try await target.send("PUBSUB", "SHARDNUMSUB", .string(requests)).array?.last?.integer == 1
                    }
                }
            }
        }
    }
}

extension ClusterTests {
    /// The master of a live stream's slot crashes (SIGKILL) and its replica takes over: the
    /// creator and a follower on another instance both get the whole text, once the instances
    /// have found the new master (their subscriptions and commands to the dead node fail, and the
    /// slot map is read again).
    @Test func aMasterThatFailsOverToItsReplicaLosesNoLiveStream() async throws {
        let cluster = try await PrivateRedisCluster.start(nodeTimeout: .seconds(1))
        defer { cluster.stop() }
        let id = "failing-over"
        let slot = HashSlot.of(WireProtocol.tag(id))
        let master = try await cluster.node(servingSlot: slot)
        let replica = try await cluster.addReplica(of: master)
        try await Deployment.with(.cluster, redisURL: cluster.seedsURL, redis: { $0.commandTimeout = .seconds(2) }, options: {
            $0.replayGrace = .seconds(30)
            $0.watchdogInterval = .milliseconds(200)
        }) { deployment throws in
            try await Self.streamThrough(id, in: deployment) { feed in
                cluster.crash(node: master)
                feed.send(10)
                // The replica serves the slot once the other masters have counted its master failed.
                let admin = try #require(deployment.cluster)
                try await eventually(timeout: .seconds(30)) {
                    try? await admin.refreshMap()
                    return admin.slotMap.master(of: slot)?.port == replica
                }
            }
        }
    }
}

extension ClusterTests {
    /// A stream created on context 0 and followed on context 1, fed numbered chunks: ten, then
    /// whatever `fault` does (it may feed more), then ten more. The creator and the follower must
    /// each get the whole text.
    static func streamThrough(_ id: String, in deployment: Deployment, _ fault: (Feed) async throws -> Void) async throws {
        let source = ManualSource()
        let producer = try await deployment.contexts[0].resumableStream(id, source: source.make).reader()
        source.send("0 ")
        let follower = try await deployment.contexts[1].resumeExistingStream(id).reader()
        let followed = Tally()
        async let followedText = read(follower, counting: followed)
        let feed = Feed(source, first: 1)
        feed.send(9)
        await followed.wait(until: 1)
        try await fault(feed)
        feed.send(10)
        source.finish()
        let expected = "0 " + feed.text
        #expect(try await producer.text() == expected)
        #expect(try await followedText == expected)
    }

    /// The reader's whole text, counting its chunks as they come.
    static func read(_ reader: ResumableStreamReader, counting chunks: Tally) async throws -> String {
        var text = ""
        for try await chunk in reader {
            text += chunk.text
            chunks.add()
        }
        return text
    }
}

/// Numbered chunks for a source, from any task: what was sent is ``text``.
final class Feed: Sendable {
    private let source: ManualSource
    private let state: Mutex<(next: Int, text: String)>

    init(_ source: ManualSource, first: Int) {
        self.source = source
        self.state = Mutex((first, ""))
    }

    func send(_ count: Int) {
        state.withLock { state in
            for _ in 0..<count {
                let chunk = "\(state.next) "
                source.send(chunk)
                state.text += chunk
                state.next += 1
            }
        }
    }

    var text: String { state.withLock { $0.text } }
}
