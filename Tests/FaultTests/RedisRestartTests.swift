import Testing

extension FaultTests {
    /// Redis is killed (SIGKILL) mid-stream and started again, empty, on the same port. The
    /// creator on A and the follower on B get the whole text; within 2 s of the restart the stream
    /// is live again as seen from B, and a new follower there gets all of it.
    @Test func redisKilledAndRestartedEmptyMidStream() async throws {
        try await FaultHarness.run { h in
            let redis = try await h.startRedis()
            let a = try await h.startServer("A", redis: redis)
            let b = try await h.startServer("B", redis: redis)
            let demo = Demo(count: 100, intervalMs: 100)

            let creator = Observed(StreamRead())
            let creatorResponse = try await h.openStream(.POST, "\(a.base)/streams/restarted", body: demo.body, "the creator on A")
            async let _ = EventStreamReader.read(creatorResponse, into: creator, timeout: .seconds(60))
            let follower = Observed(StreamRead())
            let followerResponse = try await h.openStream(.GET, "\(b.base)/streams/restarted", "the follower on B")
            async let _ = EventStreamReader.read(followerResponse, into: follower, timeout: .seconds(60))
            _ = try h.require(await creator.wait(timeout: .seconds(10)) { $0.chunks >= 5 }, "the creator on A did not get 5 chunks within 10 s: \(creator.value)")
            _ = try h.require(await follower.wait(timeout: .seconds(10)) { $0.chunks >= 5 }, "the follower on B did not get 5 chunks within 10 s: \(follower.value)")

            redis.kill()
            try await redis.restart()
            let restartedAt = ContinuousClock.now
            h.check(creator.value.end == nil, "the stream ended before the restart; make it longer: \(creator.value)")

            await h.waitFor("HEAD of the stream on B says live after the restart", since: restartedAt, within: .seconds(2)) {
                let answer = await HTTP.send(.HEAD, "\(b.base)/streams/restarted", timeout: .seconds(2))
                return (answer.status == 200 && answer.streamState == "live", answer.description)
            }
            let late = Observed(StreamRead())
            let lateResponse = try await h.openStream(.GET, "\(b.base)/streams/restarted", "a new follower on B after the restart")
            let acceptedAfter = ContinuousClock.now - restartedAt
            h.check(acceptedAfter <= .seconds(2) + Self.brokerTimeout, "the new follower on B was accepted \(acceptedAfter.seconds) s after the restart")
            async let _ = EventStreamReader.read(lateResponse, into: late, timeout: .seconds(60))

            for read in [creator, follower, late] {
                _ = await read.wait(timeout: demo.duration + .seconds(15)) { $0.finished }
            }
            h.checkComplete(creator.value, demo, "the creator on A")
            h.checkComplete(follower.value, demo, "the follower on B")
            h.checkComplete(late.value, demo, "the new follower on B")
        }
    }
}
