import Testing

extension FaultTests {
    /// The producer's instance is killed (SIGKILL) mid-stream. Its follower on B ends with
    /// `producer_lost`; once the lease runs out the stream is no longer live, and the id can be
    /// created again on B.
    @Test func producerInstanceKilledMidStream() async throws {
        try await FaultHarness.run { h in
            let redis = try await h.startRedis()
            let a = try await h.startServer("A", redis: redis)
            let b = try await h.startServer("B", redis: redis)
            let demo = Demo(count: 200, intervalMs: 50)

            let creator = Observed(StreamRead())
            let creatorResponse = try await h.openStream(.POST, "\(a.base)/streams/orphan", body: demo.body, "the creator on A")
            async let _ = EventStreamReader.read(creatorResponse, into: creator, timeout: .seconds(60))
            let follower = Observed(StreamRead())
            let followerResponse = try await h.openStream(.GET, "\(b.base)/streams/orphan", "the follower on B")
            async let _ = EventStreamReader.read(followerResponse, into: follower, timeout: .seconds(60))
            _ = try h.require(await follower.wait(timeout: .seconds(10)) { $0.chunks >= 5 }, "the follower on B did not get 5 chunks within 10 s: \(follower.value)")

            a.process.killAndReap()
            let killedAt = ContinuousClock.now

            // Within the lease the id is free again, as seen from B, while the follower there
            // waits for its end.
            async let orphaned = follower.wait(timeout: Self.followerEndBound) { $0.finished }
            await h.waitFor("HEAD of the stream on B no longer says live", since: killedAt, within: Self.lease + .seconds(2)) {
                let answer = await HTTP.send(.HEAD, "\(b.base)/streams/orphan", timeout: .seconds(2))
                return (answer.status.map { [200, 404].contains($0) } == true && answer.streamState != nil && answer.streamState != "live", answer.description)
            }
            let again = Demo(count: 5, intervalMs: 20)
            let recreated = Observed(StreamRead())
            let recreatedResponse = try await h.openStream(.POST, "\(b.base)/streams/orphan", body: again.body, "a POST of the same id on B")
            let recreatedAfter = ContinuousClock.now - killedAt
            h.check(recreatedAfter <= Self.lease + .seconds(3), "the id was created again on B only \(recreatedAfter.seconds) s after the kill")
            async let _ = EventStreamReader.read(recreatedResponse, into: recreated, timeout: .seconds(30))
            _ = await recreated.wait(timeout: .seconds(20)) { $0.finished }
            h.checkComplete(recreated.value, again, "the stream created again on B")

            // The follower of the dead producer's stream ends as failed, with nothing of the new
            // stream of the same id.
            let ended = await orphaned
            h.check(ended?.end?.status == "failed" && ended?.end?.error == "producer_lost",
                    "the follower on B: expected the end event failed with producer_lost within \(Self.followerEndBound.seconds) s of the kill, got \(follower.value)")
            h.check(demo.text.hasPrefix(follower.value.text), "the follower on B read text that is not the dead producer's stream's: …\(follower.value.text.suffix(60))")
        }
    }
}
