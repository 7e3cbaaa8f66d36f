import Foundation
import Redis
@testable import ResumableStream
import TestSupport
import Testing

/// The coordinator when its Redis fails for real: a private redis-server paused with SIGSTOP, or
/// killed and started again empty on the same port.
@Suite("Broker faults", .serialized, .timeLimit(.minutes(2)))
struct BrokerFaultTests {
    /// Short bounds, so that a failure is an answer within seconds, with room for a loaded machine.
    private static func fastRedis(_ configuration: inout RedisConfiguration) {
        configuration.commandTimeout = .seconds(2)
        configuration.reconnectMaximumDelay = .milliseconds(200)
    }

    private static func fastOptions(_ options: inout ResumableStreamOptions) {
        options.leaseSeconds = 3
        options.acknowledgementTimeout = .seconds(3)
        options.watchdogInterval = .milliseconds(500)
        options.replayGrace = .seconds(30)
    }

    @Test func aProducerServesItsOwnStreamFromMemoryWhileRedisIsPaused() async throws {
        let server = try await PrivateRedisServer.start()
        defer { server.stop() }
        try await Deployment.with(.redis, contexts: 2, redisURL: server.url, redis: Self.fastRedis, options: Self.fastOptions) { deployment throws in
            let (producing, following) = (deployment.contexts[0], deployment.contexts[1])
            let source = ManualSource()
            let creator = try await producing.resumableStream("paused", source: source.make).reader()
            var creatorChunks = creator.makeAsyncIterator()
            source.send("a,")
            #expect(try await creatorChunks.next()?.text == "a,")
            let follower = try await following.resumeExistingStream("paused").reader()
            let followed = Task { try await follower.text() }

            server.pause()
            // The producer's own instance: its state, a new reader and its chunks, from memory.
            #expect(try await producing.state(of: "paused") == .live)
            let late = try await producing.resumeExistingStream("paused").reader()
            let lateText = Task { try await late.text() }
            source.send("b,")
            #expect(try await creatorChunks.next()?.text == "b,")
            // Anything that needs Redis is a typed error, not a hang.
            await #expect(throws: ResumableStreamError.self) { try await following.state(of: "paused") }
            do {
                _ = try await following.resumeExistingStream("elsewhere")
                Issue.record("a resume needed Redis and yet succeeded")
            } catch let error as ResumableStreamError {
                guard case .broker = error else { throw error }
            }
            // A cancellation needs Redis to reach a producer elsewhere, not here.
            await #expect(throws: ResumableStreamError.self) { try await following.cancel("other") }

            server.resume()
            source.send("c,")
            source.finish()
            #expect(try await creatorChunks.next()?.text == "c,")
            #expect(try await lateText.value == "a,b,c,")
            // The follower elsewhere lost what was published while Redis was paused, and asked
            // again from what it had: no gap, no duplicate.
            #expect(try await followed.value == "a,b,c,")
        }
    }

    @Test func aLiveStreamIsJoinableAgainAfterRedisRestartsEmpty() async throws {
        let server = try await PrivateRedisServer.start()
        defer { server.stop() }
        try await Deployment.with(.redis, contexts: 2, redisURL: server.url, redis: Self.fastRedis, options: Self.fastOptions) { deployment throws in
            let (producing, following) = (deployment.contexts[0], deployment.contexts[1])
            let source = ManualSource()
            let creator = try await producing.resumableStream("restarted", source: source.make).reader()
            let created = Task { try await creator.text() }
            source.send("a,")
            let follower = try await following.resumeExistingStream("restarted").reader()
            var followerChunks = follower.makeAsyncIterator()
            #expect(try await followerChunks.next()?.text == "a,")

            try await server.restart()
            // The producer re-asserts its sentinel when its subscription comes back: the stream is
            // live for everyone again, and a new follower elsewhere is accepted.
            try await eventually(timeout: .seconds(5)) {
                (try? await following.state(of: "restarted")) == .live
            }
            let newcomer = try await following.resumeExistingStream("restarted").reader()
            source.send("b,")
            source.finish()
            var rest = ""
            while let chunk = try await followerChunks.next() { rest += chunk.text }
            #expect("a," + rest == "a,b,")
            #expect(try await newcomer.text() == "a,b,")
            #expect(try await created.value == "a,b,")
        }
    }

    /// The id of a dead producer is created anew while a follower of the old stream still waits:
    /// the follower ends with `.producerLost`, with none of the new stream's text.
    @Test(arguments: [BrokerKind.redis, .cluster])
    func aFollowerOfADeadProducerTakesNothingOfTheStreamCreatedAnew(kind: BrokerKind) async throws {
        try await Deployment.with(kind, contexts: 2, options: { options in
            Self.fastOptions(&options)
            options.watchdogInterval = .seconds(2)
        }) { deployment throws in
            let source = ManualSource()
            _ = try await deployment.contexts[0].resumableStream("reborn", source: source.make).reader()
            source.send("old,")
            let follower = try await deployment.contexts[1].resumeExistingStream("reborn").reader()
            var chunks = follower.makeAsyncIterator()
            #expect(try await chunks.next()?.text == "old,")
            await deployment.kill(context: 0)
            try await eventually(timeout: .seconds(6)) {
                (try? await deployment.contexts[1].state(of: "reborn")) == ResumableStreamState.none
            }
            let again = ManualSource()
            guard case .created(let reader) = try await deployment.contexts[1].createStreamIfAbsent("reborn", source: again.make) else {
                Issue.record("the id was not free after the lease")
                return
            }
            again.send("new,")
            again.finish()
            #expect(try await reader.text() == "new,")
            await #expect(throws: ResumableStreamError.producerLost(streamId: "reborn")) {
                while let chunk = try await chunks.next() {
                    Issue.record("the follower of the dead producer read \(chunk.text)")
                }
            }
            source.finish()
        }
    }

    /// Only the producer's PUBLISH fails (Redis holds back writes, not the follower's reads): the
    /// producer gives the follower's listener up, the follower's connection sees nothing wrong.
    /// When the stream goes quiet the follower's probe learns it is no longer answered, and it
    /// asks again from what it has: the whole text, long before the replay grace ends.
    @Test func aFollowerThatItsProducerStoppedAnsweringAsksAgain() async throws {
        let server = try await PrivateRedisServer.start()
        defer { server.stop() }
        try await Deployment.with(.redis, contexts: 2, redisURL: server.url, redis: {
            $0.commandTimeout = .milliseconds(500)
        }, options: { options in
            Self.fastOptions(&options)
            options.watchdogInterval = .seconds(2)
        }) { deployment throws in
            let admin = try #require(deployment.redis)
            let source = ManualSource()
            let creator = try await deployment.contexts[0].resumableStream("unanswered", source: source.make).reader()
            source.send("a,")
            let follower = try await deployment.contexts[1].resumeExistingStream("unanswered").reader()
            var chunks = follower.makeAsyncIterator()
            #expect(try await chunks.next()?.text == "a,")
            // PUBLISH counts as a write; GET, SUBSCRIBE and PING do not.
            _ = try await admin.send("CLIENT", "PAUSE", "1500", "WRITE")
            source.send("b,")
            source.send("c,")
            source.finish()
            var rest = ""
            while let chunk = try await chunks.next() { rest += chunk.text }
            #expect("a," + rest == "a,b,c,")
            #expect(try await creator.text() == "a,b,c,")
        }
    }

    @Test(arguments: [BrokerKind.redis, .cluster])
    func aDeadProducersIdIsFreeAfterItsLease(kind: BrokerKind) async throws {
        try await Deployment.with(kind, contexts: 2, options: Self.fastOptions) { deployment throws in
            let source = ManualSource()
            _ = try await deployment.contexts[0].resumableStream("lapsed", source: source.make).reader()
            #expect(try await deployment.contexts[1].state(of: "lapsed") == .live)
            await deployment.kill(context: 0)
            // Nobody renews the lease: within it, the id is free and can be created again.
            try await eventually(timeout: .seconds(6)) {
                (try? await deployment.contexts[1].state(of: "lapsed")) == ResumableStreamState.none
            }
            let again = ManualSource()
            guard case .created(let reader) = try await deployment.contexts[1].createStreamIfAbsent("lapsed", source: again.make) else {
                Issue.record("the id of a dead producer was not free after its lease")
                return
            }
            again.send("new")
            again.finish()
            #expect(try await reader.text() == "new")
            source.finish()
        }
    }
}
