import Redis
import TestSupport
import Testing

extension FaultTests {
    /// One master of a three-master cluster stops answering (SIGSTOP) for a few seconds while a stream runs
    /// on every shard, created on A and followed on B. The other shards' streams go on as if
    /// nothing happened and new ones start there; requests for the paused shard get the 503 JSON
    /// within the broker timeout; the instances stay ready; after SIGCONT the paused shard serves
    /// again and every reader gets its whole text.
    @Test func oneClusterMasterPausedForAFewSeconds() async throws {
        let cluster = try await PrivateRedisCluster.start()
        defer { cluster.stop() }
        try await FaultHarness.run { h in
            let mode = ["--redis-mode", "cluster"]
            let a = try await h.startServer("A", redis: nil, redisURL: cluster.seedsURL, extraArguments: mode)
            let b = try await h.startServer("B", redis: nil, redisURL: cluster.seedsURL, extraArguments: mode)
            // Ids by shard: the stream id is its names' hash tag.
            let map = try await cluster.slotMap()
            var ids: [Int: [String]] = [:]
            for candidate in 0..<200 {
                let id = "paused-\(candidate)"
                ids[try cluster.owner(of: HashSlot.of(id), in: map), default: []].append(id)
            }
            let shards = cluster.nodes.indices.map { ids[$0] ?? [] }
            try #require(shards.allSatisfy { $0.count >= 3 })
            let paused = 1
            // 9 s: they run through the pause and end after it.
            let demo = Demo(count: 90, intervalMs: 100)
            var readers: [(String, Observed<StreamRead>, Observed<StreamRead>)] = []
            for shard in shards {
                let id = shard[0]
                let creator = Observed(StreamRead())
                let creatorResponse = try await h.openStream(.POST, "\(a.base)/streams/\(id)", body: demo.body, "the creator of \(id) on A")
                h.background { await EventStreamReader.read(creatorResponse, into: creator, timeout: .seconds(60)) }
                let follower = try await h.follow("\(b.base)/streams/\(id)", "the follower of \(id) on B")
                readers.append((id, creator, follower))
            }
            for (id, _, follower) in readers {
                _ = try h.require(await follower.wait(timeout: .seconds(10)) { $0.chunks >= 3 }, "the follower of \(id) on B did not get 3 chunks: \(follower.value)")
            }

            cluster.pause(node: paused)
            let pausedAt = ContinuousClock.now
            let bound = Self.answerBound
            let pausedId = shards[paused][0]
            async let createPaused = HTTP.send(.POST, "\(b.base)/streams/\(shards[paused][1])", body: Demo(count: 3, intervalMs: 10).body, timeout: .seconds(5))
            async let getPaused = HTTP.send(.GET, "\(b.base)/streams/\(pausedId)?resumeAt=0", timeout: .seconds(5))
            async let readyA = HTTP.send(.GET, "\(a.base)/readyz", timeout: .seconds(5))
            async let readyB = HTTP.send(.GET, "\(b.base)/readyz", timeout: .seconds(5))
            h.checkRefusal(await createPaused, "POST of a new stream on the paused shard", status: 503, code: "broker_unavailable", within: bound)
            h.checkRefusal(await getPaused, "GET on B of the paused shard's stream", status: 503, code: "broker_unavailable", within: bound)
            for (name, ready) in [("A", await readyA), ("B", await readyB)] {
                h.check(ready.status == 200 && ready.elapsed <= bound, "/readyz on \(name) with one master paused: expected 200 within \(bound.seconds) s, got \(ready)")
            }
            // The other shards: their followers keep receiving, and a new stream runs whole.
            for (index, (id, _, follower)) in readers.enumerated() where index != paused {
                let before = follower.value.chunks
                h.check(await follower.wait(timeout: .seconds(2)) { $0.chunks >= before + 5 } != nil,
                        "the follower of \(id) on shard \(index) stalled while another master was paused: \(follower.value)")
            }
            for (index, shard) in shards.enumerated() where index != paused {
                let quick = Demo(count: 5, intervalMs: 20)
                let creator = Observed(StreamRead())
                let response = try await h.openStream(.POST, "\(b.base)/streams/\(shard[1])", body: quick.body, "a new stream on shard \(index) on B during the pause")
                await EventStreamReader.read(response, into: creator, timeout: .seconds(5))
                h.checkComplete(creator.value, quick, "a new stream on shard \(index) during the pause")
            }
            // The pause lasts as long as the checks made during it, which wait for their own
            // answers: at least the broker timeout, about 2 to 3 s in all.
            h.check(ContinuousClock.now - pausedAt < .seconds(4), "the checks during the pause took until \((ContinuousClock.now - pausedAt).seconds) s")
            cluster.resume(node: paused)
            let resumedAt = ContinuousClock.now
            await h.waitFor("a new stream on the paused shard after SIGCONT", since: resumedAt, within: .seconds(5)) {
                let answer = await HTTP.send(.POST, "\(a.base)/streams/\(shards[paused][2])", body: Demo(count: 2, intervalMs: 10).body, timeout: .seconds(3))
                return (answer.status == 200, answer.description)
            }
            for (id, creator, follower) in readers {
                for (name, read) in [("creator on A", creator), ("follower on B", follower)] {
                    _ = await read.wait(timeout: demo.duration + .seconds(15)) { $0.finished }
                    h.checkComplete(read.value, demo, "the \(name) of \(id)")
                }
            }
        }
    }
}

extension FaultTests {
    /// An instance in the standalone mode pointed at a cluster node would fail every stream whose
    /// slot is elsewhere: it does not start, and says to use the cluster mode.
    @Test func theStandaloneModeRefusesAClusterNode() async throws {
        let cluster = try await PrivateRedisCluster.start()
        defer { cluster.stop() }
        try await FaultHarness.run { h in
            do {
                let server = try await h.startServer("standalone on a cluster node", redis: nil, redisURL: cluster.nodes[0].url)
                h.fail("an instance in the standalone mode on a cluster node started and listens on \(server.port)")
            } catch let error as ServerProcess.StartFailed {
                h.check(error.message.contains("before it listened") && error.message.contains("--redis-mode cluster"),
                        "expected the instance to exit before it listens, naming --redis-mode cluster; got \(error.message)")
            }
        }
    }
}
