import Foundation
import NIOCore
import Redis
@testable import ResumableStream
import TestSupport
import Testing

/// The protocol at the wire, and what it costs in Redis commands.
@Suite("Redis wire protocol", .timeLimit(.minutes(2)))
struct RedisWireTests {
    static let endMessage = "\n\n\nDONE_SENTINEL_hasdfasudfyge374%$%^$EDSATRTYFtydryrte\n"

    /// The test is the reference's consumer: its own chunk channel first, then the request. A
    /// durable stream's producer answers the reference too.
    @Test(arguments: [#""skipCharacters":3"#, #""skipCharacters":null"#, ""], ResumableStreamDurability.allCases)
    func aReferenceConsumerResumesASwiftStream(skipField: String, durability: ResumableStreamDurability) async throws {
        try await Deployment.with(.redis, contexts: 1, options: { $0.durability = durability }) { deployment throws in
            let source = ManualSource()
            let reader = try await deployment.contexts[0].resumableStream("wire", source: source.make).reader()
            source.send("Hello ", "wire")
            // Asked once the producer has both chunks, so that the answer's first message is known.
            var local = reader.makeAsyncIterator()
            var seen = ""
            while seen.count < 10, let chunk = try await local.next() { seen += chunk.text }
            let subscriber = try await RedisSubscriber.connect(configuration: Deployment.redisConfiguration())
            defer { Task { await subscriber.close() } }
            let listener = "reference-\(UUID().uuidString)"
            let chunks = try await subscriber.subscribe(to: "\(deployment.prefix):rs:chunk:\(listener)")
            let request = "{\"listenerId\":\"\(listener)\"\(skipField.isEmpty ? "" : ",")\(skipField)}"
            #expect(try await deployment.redis?.publish(.string(request), to: "\(deployment.prefix):rs:request:wire") == 1)

            var messages = chunks.makeAsyncIterator()
            let skipped = skipField.contains("3") ? "lo wire" : "Hello wire"
            #expect(try await messages.next() == .message(ByteBuffer(string: skipped)))
            source.send("!")
            #expect(try await messages.next() == .message(ByteBuffer(string: "!")))
            source.finish()
            #expect(try await messages.next() == .message(ByteBuffer(string: Self.endMessage)))
            #expect(try await reader.text() == "Hello wire!")
        }
    }

    /// The test is the reference's producer: INCR, listen for requests, answer on the listener's
    /// channel. An instance in durable mode finds no log, and asks the producer as the reference does.
    @Test(arguments: ResumableStreamDurability.allCases)
    func aSwiftConsumerResumesAReferenceStream(durability: ResumableStreamDurability) async throws {
        try await Deployment.with(.redis, contexts: 1, options: { $0.durability = durability }) { deployment throws in
            let redis = try #require(deployment.redis)
            let sentinel = "\(deployment.prefix):rs:sentinel:ref"
            #expect(try await redis.incr(sentinel) == 1)
            let requests = try await deployment.broker.subscribe(to: "\(deployment.prefix):rs:request:ref")
            defer { requests.cancel() }

            async let followed = deployment.contexts[0].resumeExistingStream("ref", resumeAt: 2).reader().text()
            var incoming = requests.makeAsyncIterator()
            guard case .message(let message)? = try await incoming.next() else {
                Issue.record("expected a request"); return
            }
            // The request is what the reference reads: a listener id and a number of characters to skip.
            let object = try #require(try JSONSerialization.jsonObject(with: Data(message.utf8)) as? [String: Any])
            let listener = try #require(object["listenerId"] as? String)
            let skip = try #require(object["skipCharacters"] as? Int)
            let chunkChannel = "\(deployment.prefix):rs:chunk:\(listener)"
            let text = "abcdef"
            try await redis.publish(.string(String(text.dropFirst(skip))), to: chunkChannel)
            try await redis.publish("ghi", to: chunkChannel)
            try await redis.publish(.string(Self.endMessage), to: chunkChannel)
            try await redis.set(sentinel, to: "DONE", expireInSeconds: 86_400)
            #expect(try await followed == "cdefghi")
            #expect(try await deployment.contexts[0].state(of: "ref") == .finished)
        }
    }

    @Test func theSentinelAlwaysExpires() async throws {
        try await Deployment.with(.redis, contexts: 1, options: { $0.leaseSeconds = 300 }) { deployment throws in
            let redis = try #require(deployment.redis)
            let source = ManualSource()
            _ = try await deployment.contexts[0].resumableStream("idempotent", source: source.make).reader()
            _ = try await deployment.contexts[0].createNewResumableStream("explicit", source: ManualSource().make)
            for id in ["idempotent", "explicit"] {
                let ttl = try await redis.send("TTL", .string("\(deployment.prefix):rs:sentinel:\(id)")).integer ?? -1
                #expect((1...300).contains(ttl))
            }
            source.finish()
        }
    }

    /// 100 followers over three instances cost three PUBLISHes per chunk, not a hundred.
    @Test func followersShareOneUpstreamPerInstance() async throws {
        let server = try await PrivateRedisServer.start()
        defer { server.stop() }
        try await Deployment.with(.redis, contexts: 4, redisURL: server.url) { deployment throws in
            let redis = try #require(deployment.redis)
            let source = ManualSource()
            _ = try await deployment.contexts[0].resumableStream("crowd", source: source.make).reader()
            let followers = 100
            let received = (0..<100).map { _ in Tally() }
            let readers = try await withThrowingTaskGroup(of: ResumableStreamReader.self) { group in
                for index in 0..<followers {
                    let context = deployment.contexts[1 + index % 3]
                    group.addTask { try await context.resumeExistingStream("crowd").reader() }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let reading = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for reader in readers {
                        group.addTask {
                            for try await chunk in reader {
                                received[Int(chunk.text) ?? 99].add()
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            _ = try await redis.send("CONFIG", "RESETSTAT")
            let chunks = 20
            for index in 0..<chunks {
                source.send("\(index)")
                await received[index].wait(until: followers)
            }
            source.finish()
            try await reading.value
            let publishes = try await PrivateRedisServer.commandCalls(redis)["publish"] ?? 0
            // One PUBLISH per chunk per instance with followers, and one end message each.
            #expect(publishes == 3 * chunks + 3)
        }
    }

    /// A stream nobody resumes costs the same few commands, whatever its length.
    @Test func theCommonCaseCostsAFixedNumberOfCommands() async throws {
        let server = try await PrivateRedisServer.start()
        defer { server.stop() }
        try await Deployment.with(.redis, contexts: 1, redisURL: server.url) { deployment throws in
            let redis = try #require(deployment.redis)
            var costs: [[String: Int]] = []
            // The first stream of a process loads the scripts (SCRIPT LOAD, once): not counted.
            let warmUp = ManualSource()
            let warm = try await deployment.contexts[0].resumableStream("common-warm-up", source: warmUp.make).reader()
            warmUp.finish()
            _ = try await warm.text()
            await deployment.contexts[0].waitForProducer("common-warm-up")
            // Its UNSUBSCRIBE goes out as its producer closes: let it land before the counting starts.
            try await unsubscribed(redis, from: "\(deployment.prefix):rs:request:common-warm-up")
            for chunks in [10, 1_000] {
                _ = try await redis.send("CONFIG", "RESETSTAT")
                let id = "common-\(chunks)"
                let source = ManualSource()
                let reader = try await deployment.contexts[0].resumableStream(id, source: source.make).reader()
                for index in 0..<chunks { source.send("chunk \(index) ") }
                source.finish()
                _ = try await reader.text()
                await deployment.contexts[0].waitForProducer(id)
                // The UNSUBSCRIBE goes out as the producer closes; count it in this round.
                try await unsubscribed(redis, from: "\(deployment.prefix):rs:request:\(id)")
                var calls = try await PrivateRedisServer.commandCalls(redis)
                // The subscriber's health check PINGs now and then, whatever the streams do.
                calls = calls.filter { !$0.key.hasPrefix("config") && $0.key != "info" && !$0.key.hasPrefix("pubsub") && $0.key != "ping" }
                costs.append(calls)
            }
            #expect(costs[0] == costs[1])
            // Four round trips: SUBSCRIBE, EVALSHA (whose INCR and EXPIRE commandstats counts too),
            // SET DONE, UNSUBSCRIBE.
            #expect(costs[1] == ["subscribe": 1, "evalsha": 1, "incr": 1, "expire": 1, "set": 1, "unsubscribe": 1])
        }
    }

    private func unsubscribed(_ redis: RedisClient, from channel: String) async throws {
        try await eventually {
            try await redis.send("PUBSUB", "NUMSUB", .string(channel)).array?.last?.integer == 0
        }
    }

    @Test(arguments: [BrokerKind.redis, .cluster])
    func followersOfADeadProducerEndWithAClearErrorAndItsSentinelExpires(kind: BrokerKind) async throws {
        try await Deployment.with(kind, contexts: 2, options: {
            $0.leaseSeconds = 2
            $0.watchdogInterval = .milliseconds(200)
        }) { deployment throws in
            let source = ManualSource()
            _ = try await deployment.contexts[0].resumableStream("doomed", source: source.make).reader()
            source.send("partial")
            let follower = try await deployment.contexts[1].resumeExistingStream("doomed").reader()
            var chunks = follower.makeAsyncIterator()
            #expect(try await chunks.next()?.text == "partial")

            await deployment.kill(context: 0)
            await #expect(throws: ResumableStreamError.producerLost(streamId: "doomed")) { _ = try await chunks.next() }
            try await eventually { try await deployment.broker.get(deployment.wire.sentinelKey("doomed")) == nil }
            source.finish()
        }
    }

    /// A follower instance whose subscriber connection is cut mid-stream asks again from what it has:
    /// its readers see neither a gap nor a duplicate.
    @Test func aFollowerInstanceRecoversFromALostSubscriberConnection() async throws {
        // The replay grace lets a follower that was cut off near the end still ask for the rest.
        try await Deployment.with(.redis, contexts: 2, options: { $0.replayGrace = .seconds(30) }) { deployment throws in
            let redis = try #require(deployment.redis)
            let source = ManualSource()
            let producer = try await deployment.contexts[0].resumableStream("cut", source: source.make).reader()
            let follower = try await deployment.contexts[1].resumeExistingStream("cut").reader()
            var chunks = follower.makeAsyncIterator()
            var text = ""
            for index in 0..<5 {
                source.send("\(index),")
                text += try await chunks.next()?.text ?? ""
            }
            // Only the subscriber connection carries SUBSCRIBE; kill it, not the command connection.
            let list = try await redis.send("CLIENT", "LIST").string ?? ""
            let subscriberLine = try #require(list.split(separator: "\n").first {
                $0.contains(" name=\(deployment.clientName(of: 1)) ") && $0.contains(" sub=") && !$0.contains(" sub=0 ")
            })
            let id = try #require(subscriberLine.split(separator: " ").first { $0.hasPrefix("id=") }?.dropFirst(3))
            #expect(try await redis.send("CLIENT", "KILL", "ID", .string(String(id))).integer == 1)

            for index in 5..<10 {
                source.send("\(index),")
            }
            source.finish()
            while let chunk = try await chunks.next() {
                text += chunk.text
            }
            let expected = (0..<10).map { "\($0)," }.joined()
            #expect(text == expected)
            #expect(try await producer.text() == expected)
        }
    }
}
