import Testing

extension FaultTests {
    /// Redis stops answering (SIGSTOP) for 10 s while a stream runs, created on A and followed
    /// on B. Every request gets its documented answer within the broker timeout and a margin; the
    /// producer's own instance keeps serving its stream; after SIGCONT everything works again and
    /// both readers get the whole text.
    @Test func redisPausedForTenSecondsWhileAStreamRuns() async throws {
        try await FaultHarness.run { h in
            let redis = try await h.startRedis()
            let a = try await h.startServer("A", redis: redis)
            let b = try await h.startServer("B", redis: redis)
            // 15 s: it runs through the pause and ends after it.
            let demo = Demo(count: 150, intervalMs: 100)
            let stream = "\(a.base)/streams/paused"

            let creator = Observed(StreamRead())
            let creatorResponse = try await h.openStream(.POST, stream, body: demo.body, "the creator on A")
            async let _ = EventStreamReader.read(creatorResponse, into: creator, timeout: .seconds(60))
            let follower = Observed(StreamRead())
            let followerResponse = try await h.openStream(.GET, "\(b.base)/streams/paused", "the follower on B")
            async let _ = EventStreamReader.read(followerResponse, into: follower, timeout: .seconds(60))
            // The DELETE sent during the pause is for another live stream: a PUBLISH that timed
            // out may still reach Redis when it resumes, and would cancel the checked stream.
            let spare = Observed(StreamRead())
            let spareResponse = try await h.openStream(.POST, "\(a.base)/streams/spare", body: Demo(count: 300, intervalMs: 100).body, "the spare stream's creator on A")
            async let _ = EventStreamReader.read(spareResponse, into: spare, timeout: .seconds(60))
            _ = try h.require(await creator.wait(timeout: .seconds(10)) { $0.chunks >= 5 }, "the creator on A did not get 5 chunks within 10 s: \(creator.value)")
            _ = try h.require(await follower.wait(timeout: .seconds(10)) { $0.chunks >= 5 }, "the follower on B did not get 5 chunks within 10 s: \(follower.value)")

            redis.pause()
            let pausedAt = ContinuousClock.now
            let offsetAtPause = creator.value.lastId
            let bound = Self.answerBound
            // Every kind of request at once, so that all are sent while Redis is paused.
            async let getOnB = HTTP.send(.GET, "\(b.base)/streams/paused", timeout: .seconds(5))
            async let headOnB = HTTP.send(.HEAD, "\(b.base)/streams/paused", timeout: .seconds(5))
            async let statusOnB = HTTP.send(.GET, "\(b.base)/streams/paused/status", timeout: .seconds(5))
            async let deleteOnB = HTTP.send(.DELETE, "\(b.base)/streams/spare", timeout: .seconds(5))
            async let createOnB = HTTP.send(.POST, "\(b.base)/streams/refused", body: Demo(count: 3, intervalMs: 10).body, timeout: .seconds(5))
            async let readyOnB = HTTP.send(.GET, "\(b.base)/readyz", timeout: .seconds(5))
            async let getOnA = HTTP.readPast(stream, offset: offsetAtPause, timeout: .seconds(5))
            async let headOnA = HTTP.send(.HEAD, stream, timeout: .seconds(5))
            async let statusOnA = HTTP.send(.GET, "\(stream)/status", timeout: .seconds(5))
            async let createOnA = HTTP.send(.POST, "\(a.base)/streams/refused-too", body: Demo(count: 3, intervalMs: 10).body, timeout: .seconds(5))
            async let readyOnA = HTTP.send(.GET, "\(a.base)/readyz", timeout: .seconds(5))

            h.checkRefusal(await getOnB, "GET of the stream on B while Redis is paused", status: 503, code: "broker_unavailable", within: bound)
            h.checkRefusal(await headOnB, "HEAD of the stream on B while Redis is paused", status: 503, code: nil, within: bound)
            h.checkRefusal(await statusOnB, "GET status of the stream on B while Redis is paused", status: 503, code: "broker_unavailable", within: bound)
            h.checkRefusal(await deleteOnB, "DELETE of a stream on B while Redis is paused", status: 503, code: "broker_unavailable", within: bound)
            h.checkRefusal(await createOnB, "POST of a new stream on B while Redis is paused", status: 503, code: "broker_unavailable", within: bound)
            h.checkRefusal(await readyOnB, "/readyz on B while Redis is paused", status: 503, code: "broker_unavailable", within: bound)
            h.checkRefusal(await readyOnA, "/readyz on A while Redis is paused", status: 503, code: "broker_unavailable", within: bound)
            // A new id cannot be claimed without Redis, on any instance.
            h.checkRefusal(await createOnA, "POST of a new stream on A while Redis is paused", status: 503, code: "broker_unavailable", within: bound)
            // The producer's own instance serves its stream from memory.
            let (resumed, resumedRead) = await getOnA
            h.check(resumed.status == 200 && resumed.failure == nil && resumed.elapsed <= bound,
                    "a new GET of the stream on A while Redis is paused: expected chunks past offset \(offsetAtPause) within \(bound.seconds) s, got \(resumed); read \(resumedRead)")
            let head = await headOnA
            h.check(head.status == 200 && head.streamState == "live" && head.elapsed <= bound,
                    "HEAD of the stream on A while Redis is paused: expected 200 live within \(bound.seconds) s, got \(head)")
            let status = await statusOnA
            h.check(status.status == 200 && status.jsonState == "live" && status.elapsed <= bound,
                    "GET status of the stream on A while Redis is paused: expected 200 with \"state\":\"live\" within \(bound.seconds) s, got \(status)")

            // The fault's length: Redis stays paused for 10 s.
            try await Task.sleep(until: pausedAt + .seconds(10))
            h.check(follower.value.end == nil && follower.value.failure == nil, "the follower on B ended while Redis was paused: \(follower.value)")
            redis.resume()
            let resumedAt = ContinuousClock.now

            // Within 2 s everything works.
            for server in [a, b] {
                await h.waitFor("/readyz on \(server.name) says ready after SIGCONT", since: resumedAt, within: .seconds(2)) {
                    let answer = await HTTP.send(.GET, "\(server.base)/readyz", timeout: .seconds(2))
                    return (answer.status == 200, answer.description)
                }
            }
            if creator.value.end == nil {
                await h.waitFor("HEAD of the running stream on B says live after SIGCONT", since: resumedAt, within: .seconds(2)) {
                    let answer = await HTTP.send(.HEAD, "\(b.base)/streams/paused", timeout: .seconds(2))
                    return (answer.status == 200 && answer.streamState == "live", answer.description)
                }
            }
            let after = Demo(count: 10, intervalMs: 100)
            let afterCreator = Observed(StreamRead())
            let afterResponse = try await h.openStream(.POST, "\(b.base)/streams/after", body: after.body, "a new stream on B after SIGCONT")
            async let _ = EventStreamReader.read(afterResponse, into: afterCreator, timeout: .seconds(30))
            let afterFollower = Observed(StreamRead())
            let afterFollowerResponse = try await h.openStream(.GET, "\(a.base)/streams/after", "the new stream's follower on A")
            async let _ = EventStreamReader.read(afterFollowerResponse, into: afterFollower, timeout: .seconds(30))
            h.check(ContinuousClock.now - resumedAt <= .seconds(4), "creating a stream on B and following it on A took until \((ContinuousClock.now - resumedAt).seconds) s after SIGCONT")

            // Both readers of the first stream get all of it, then the end.
            let remaining = demo.duration - (resumedAt - pausedAt) + .seconds(15)
            for read in [creator, follower, afterCreator, afterFollower] {
                _ = await read.wait(timeout: remaining) { $0.finished }
            }
            h.checkComplete(creator.value, demo, "the creator on A")
            h.checkComplete(follower.value, demo, "the follower on B")
            h.checkComplete(afterCreator.value, after, "the new stream's creator on B")
            h.checkComplete(afterFollower.value, after, "the new stream's follower on A")
        }
    }
}
