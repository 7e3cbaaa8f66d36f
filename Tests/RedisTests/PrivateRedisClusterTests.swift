import Foundation
import NIOCore
import Redis
import TestSupport
import Testing

/// The test cluster itself: formed, its slots where they should be, a slot moved with its key, a
/// node paused and resumed; and the shared cluster that scripts/test starts.
@Suite("Private Redis Cluster", .timeLimit(.minutes(2)))
struct PrivateRedisClusterTests {
    @Test func aClusterFormsMovesASlotWithItsKeyAndPausesANode() async throws {
        let cluster = try await PrivateRedisCluster.start()
        defer { cluster.stop() }
        #expect(cluster.nodes.count == 3)
        #expect(Set(cluster.nodes.map(\.id)).count == 3)

        // Every node is ok and serves its third of the slots, in order.
        for (index, node) in cluster.nodes.enumerated() {
            try await using(cluster.client(node: index), close: { await $0.close() }) { client throws in
                let info = try await client.send("CLUSTER", "INFO").string ?? ""
                #expect(info.contains("cluster_state:ok"))
                #expect(try await client.send("CLUSTER", "MYID").string == node.id)
            }
        }
        for (slot, owner) in [(0, 0), (5_460, 0), (5_461, 1), (10_922, 1), (10_923, 2), (16_383, 2)] {
            #expect(try await cluster.node(servingSlot: slot) == owner)
        }

        // A key, written where its slot lives, moves with the slot.
        let key = "cluster-test:\(UUID().uuidString)"
        let slot = HashSlot.of(key)
        let source = try await cluster.node(servingSlot: slot)
        let target = (source + 1) % cluster.nodes.count
        try await using(cluster.client(node: source), close: { await $0.close() }) { client throws in
            _ = try await client.set(key, to: .string("moved"))
        }
        let migrating = Tally()
        try await cluster.migrate(slot: slot, to: target) {
            // Mid-migration the target imports the slot, and the key is still at the source.
            try await using(cluster.client(node: target), close: { await $0.close() }) { client throws in
                let nodes = try await client.send("CLUSTER", "NODES").string ?? ""
                #expect(nodes.contains("[\(slot)-<-\(cluster.nodes[source].id)]"))
                #expect(try await client.send("CLUSTER", "COUNTKEYSINSLOT", .integer(slot)).integer == 0)
            }
            migrating.add()
        }
        #expect(migrating.value == 1)
        #expect(try await cluster.node(servingSlot: slot) == target)
        try await using(cluster.client(node: target), close: { await $0.close() }) { client throws in
            #expect(try await client.getString(key) == "moved")
        }
        try await using(cluster.client(node: source), close: { await $0.close() }) { client throws in
            let error = await #expect(throws: RedisServerError.self) { try await client.getString(key) }
            #expect(error?.code == "MOVED")
            #expect(error?.message.hasSuffix("127.0.0.1:\(cluster.nodes[target].port)") == true)
            #expect(try await client.send("CLUSTER", "COUNTKEYSINSLOT", .integer(slot)).integer == 0)
        }

        // A paused node answers nothing until it is resumed.
        var configuration = try cluster.configuration(node: 1)
        configuration.commandTimeout = .milliseconds(300)
        try await using(RedisClient.connect(configuration: configuration), close: { await $0.close() }) { client throws in
            #expect(try await client.ping() == "PONG")
            cluster.pause(node: 1)
            await #expect(throws: RedisConnectionError.commandTimeout(.milliseconds(300))) { try await client.ping() }
            cluster.resume(node: 1)
            // The client reconnects after its timeout; the node answers again.
            try await eventually { (try? await client.ping()) == "PONG" }
        }
        try await using(cluster.client(node: 1), close: { await $0.close() }) { client throws in
            #expect(try await client.ping() == "PONG")
        }

        cluster.stop()
        cluster.stop()
        #expect(!FileManager.default.fileExists(atPath: cluster.directory.path))
        var gone = try cluster.configuration(node: 0)
        gone.connectTimeout = .seconds(1)
        await #expect(throws: RedisConnectionError.self) { try await RedisClient.connect(configuration: gone) }
    }

    /// The cluster scripts/test starts for the whole run: every seed answers and the cluster is ok.
    @Test func theSharedClusterIsReachable() async throws {
        guard let url = ProcessInfo.processInfo.environment["REDIS_CLUSTER_URL"] else { return }
        guard let at = url.lastIndex(of: "@") else {
            Issue.record("REDIS_CLUSTER_URL has no credentials: \(url)")
            return
        }
        let credentials = url[..<at]
        let seeds = url[url.index(after: at)...].split(separator: ",")
        #expect(seeds.count == 3)
        for seed in seeds {
            let configuration = try RedisConfiguration(url: "\(credentials)@\(seed)")
            try await using(RedisClient.connect(configuration: configuration), close: { await $0.close() }) { client throws in
                let info = try await client.send("CLUSTER", "INFO").string ?? ""
                #expect(info.contains("cluster_state:ok"))
                #expect(info.contains("cluster_slots_ok:16384"))
                #expect(info.contains("cluster_known_nodes:3"))
            }
        }
    }
}
