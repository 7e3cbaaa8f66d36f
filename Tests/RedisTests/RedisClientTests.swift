import NIOCore
import Redis
import TestSupport
import Testing

@Suite("Redis client against redis-server", .timeLimit(.minutes(2)))
struct RedisClientTests {
    @Test func typedCommands() async throws {
        try await TestRedis.withClient { client throws in
            let key = TestRedis.unique("basic")
            #expect(try await client.ping() == "PONG")
            #expect(try await client.get(key) == nil)
            #expect(try await client.set(key, to: "hello"))
            #expect(try await client.getString(key) == "hello")
            #expect(try await client.set(key, to: "again", onlyIfNotExists: true) == false)
            #expect(try await client.getString(key) == "hello")
            #expect(try await client.del(key) == 1)

            #expect(try await client.incr(key) == 1)
            #expect(try await client.incr(key) == 2)
            #expect(try await client.expire(key, seconds: 100))
            #expect(try await client.send("TTL", .string(key)).integer.map { (1...100).contains($0) } == true)
            #expect(try await client.set(key, to: "v", expireInSeconds: 50))
            #expect(try await client.send("TTL", .string(key)).integer.map { (1...50).contains($0) } == true)
            #expect(try await client.set(key + ":nx", to: "first", expireInSeconds: 50, onlyIfNotExists: true))
            #expect(try await client.del([key, key + ":nx", key + ":none"]) == 2)
            #expect(try await client.expire(key, seconds: 10) == false)
            #expect(try await client.publish("nobody listens", to: TestRedis.unique("channel")) == 0)
        }
    }

    @Test func pipelineStatisticsCountEveryCommandAndBatch() async throws {
        try await TestRedis.withClient { client throws in
            let before = client.pipelineStatistics
            #expect(try await client.ping() == "PONG")
            let one = client.pipelineStatistics.since(before)
            #expect(one == RedisPipelineStatistics(writes: 1, commands: 1, inFlightAfterWrites: 1))

            let key = TestRedis.unique("pipeline")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<500 {
                    group.addTask { _ = try await client.incr(key) }
                }
                try await group.waitForAll()
            }
            let many = client.pipelineStatistics.since(before).since(one)
            #expect(many.commands == 500)
            #expect((1...500).contains(many.writes))
            // Every write leaves at least its own commands in flight, and never more than were sent.
            #expect(many.inFlightAfterWrites >= many.commands)
            #expect(many.meanInFlight <= 500)
        }
    }

    @Test func genericCallReturnsEveryReplyType() async throws {
        try await TestRedis.withClient { client throws in
            let key = TestRedis.unique("generic")
            #expect(try await client.send("SET", .string(key), "1") == .status("OK"))
            #expect(try await client.send("INCRBY", .string(key), 41) == .integer(42))
            #expect(try await client.send("GET", .string(key)) == .bulk(ByteBuffer(string: "42")))
            #expect(try await client.send("GET", .string(key + ":missing")) == .null)
            #expect(
                try await client.send("MGET", .string(key), .string(key + ":missing"))
                    == .array([.bulk(ByteBuffer(string: "42")), .null])
            )
            // An error nested in an array is a value, not a thrown error.
            let nested = try await client.eval("return {1, redis.error_reply('ERR nested')}")
            #expect(nested == .array([.integer(1), .error("ERR nested")]))
            try await client.del(key)
        }
    }

    @Test func serverErrorCarriesRedisMessage() async throws {
        try await TestRedis.withClient { client throws in
            let key = TestRedis.unique("done")
            try await client.set(key, to: "DONE")
            let error = await #expect(throws: RedisServerError.self) { try await client.incr(key) }
            #expect(error?.message == "ERR value is not an integer or out of range")
            #expect(error?.code == "ERR")
            // The connection is still good after an error reply.
            #expect(try await client.getString(key) == "DONE")
            try await client.del(key)
        }
    }

    /// A script goes by its SHA after the first call, and a Redis that lost it (SCRIPT FLUSH, as
    /// after a restart) gets the source again, without an error reaching the caller.
    @Test func aScriptRunsByItsDigestAndSurvivesAFlush() async throws {
        let server = try await PrivateRedisServer.start()
        defer { server.stop() }
        let client = try await RedisClient.connect(configuration: server.configuration())
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try await client.run(script, keys: ["counted"], arguments: [.integer(2)]).integer == 2)
        #expect(try await client.run(script, keys: ["counted"], arguments: [.integer(3)]).integer == 5)
        _ = try await client.send("SCRIPT", "FLUSH")
        #expect(try await client.run(script, keys: ["counted"], arguments: [.integer(4)]).integer == 9)
        #expect(try await client.run(script, keys: ["counted"], arguments: [.integer(5)]).integer == 14)
        let calls = try await PrivateRedisServer.commandCalls(client)
        // Loaded once, then by digest, once again with its source after the flush.
        #expect(calls["script|load"] == 1)
        #expect(calls["evalsha"] == 4)
        #expect(calls["eval"] == 1)
        await client.close()
    }

    /// A hundred calls of a new script at once load it once: those that come while it loads send
    /// its source, and the calls after them go by its digest.
    @Test func aScriptCalledByManyAtOnceIsLoadedOnce() async throws {
        let server = try await PrivateRedisServer.start()
        defer { server.stop() }
        try await using(RedisClient.connect(configuration: server.configuration()), close: { await $0.close() }) { client throws in
            let script = RedisScript("return redis.call('INCR', KEYS[1])")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<100 {
                    group.addTask { _ = try await client.run(script, keys: ["at-once"]) }
                }
                try await group.waitForAll()
            }
            #expect(try await client.run(script, keys: ["at-once"]).integer == 101)
            let calls = try await PrivateRedisServer.commandCalls(client)
            #expect(calls["script|load"] == 1)
            #expect((calls["eval"] ?? 0) + (calls["evalsha"] ?? 0) == 101)
            #expect((calls["evalsha"] ?? 0) >= 1)
        }
    }

    @Test func evalAndEvalsha() async throws {
        try await TestRedis.withClient { client throws in
            let key = TestRedis.unique("script")
            let script = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])"
            #expect(try await client.eval(script, keys: [key], arguments: ["a"]) == .bulk(ByteBuffer(string: "a")))
            let sha1 = try await client.scriptLoad(script)
            #expect(try await client.evalsha(sha1, keys: [key], arguments: ["b"]) == .bulk(ByteBuffer(string: "b")))
            let error = await #expect(throws: RedisServerError.self) {
                try await client.evalsha(String(repeating: "0", count: 40))
            }
            #expect(error?.code == "NOSCRIPT")
            try await client.del(key)
        }
    }

    @Test func tenThousandConcurrentCommandsEachGetTheirOwnReply() async throws {
        try await TestRedis.withClient { client throws in
            let prefix = TestRedis.unique("pipeline")
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for task in 0..<100 {
                    group.addTask {
                        var mismatches = 0
                        try await withThrowingTaskGroup(of: Bool.self) { inner in
                            for index in 0..<100 {
                                inner.addTask {
                                    let value = "\(prefix):\(task):\(index)"
                                    // Alternate a command with an echoed payload and one with a
                                    // computed reply, so that any mix-up shows.
                                    if index.isMultiple(of: 2) {
                                        return try await client.send("ECHO", .string(value)).string == value
                                    } else {
                                        let key = "\(prefix):\(task):\(index)"
                                        return try await client.send("INCRBY", .string(key), .integer(index)) == .integer(index)
                                    }
                                }
                            }
                            for try await matched in inner where !matched {
                                mismatches += 1
                            }
                        }
                        return mismatches
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
            let keys = (0..<100).flatMap { task in stride(from: 1, to: 100, by: 2).map { "\(prefix):\(task):\($0)" } }
            #expect(try await client.del(keys) == 5_000)
        }
    }

    @Test func eightMebibyteValueRoundTrips() async throws {
        try await TestRedis.withClient { client throws in
            let key = TestRedis.unique("large")
            // Every byte value, in a pattern that does not repeat at any power-of-two stride.
            let size = 8 * 1024 * 1024
            let value = ByteBuffer(bytes: [UInt8](unsafeUninitializedCapacity: size) { bytes, count in
                for index in 0..<size {
                    bytes[index] = UInt8(truncatingIfNeeded: index &* 31 % 251 &+ index >> 16)
                }
                count = size
            })
            try await client.set(key, to: .bytes(value))
            let stored = try await client.get(key)
            #expect(stored?.readableBytes == value.readableBytes)
            #expect(stored == value)
            try await client.del(key)
        }
    }

    @Test func nulBytesRoundTripInKeysValuesAndMessages() async throws {
        try await TestRedis.withClient { client throws in
            let value = ByteBuffer(bytes: [0, 1, 0, 0, 13, 10, 0xFF, 0, 0x80, 0])
            let key = TestRedis.unique("nul") + "\u{0}suffix"
            try await client.set(key, to: .bytes(value))
            #expect(try await client.get(key) == value)
            #expect(try await client.send("STRLEN", .string(key)) == .integer(10))
            #expect(try await client.send("ECHO", .bytes(value)) == .bulk(value))
            #expect(try await client.send("ECHO", "") == .bulk(ByteBuffer()))
            try await client.del(key)
        }
    }

    @Test func aclUserAndDatabaseSelection() async throws {
        try await TestRedis.withClient { admin throws in
            let user = "user-\(TestRedis.unique("acl").suffix(8))"
            let password = "pa:ss@word%"
            _ = try await admin.send("ACL", "SETUSER", .string(user), "on", .string(">\(password)"), "~*", "+@all", "&*")
            defer { Task { _ = try? await admin.send("ACL", "DELUSER", .string(user)) } }

            var configuration = try TestRedis.configuration()
            configuration.username = user
            configuration.password = password
            configuration.database = 3
            let client = try await RedisClient.connect(configuration: configuration)
            let key = TestRedis.unique("db3")
            try await client.set(key, to: "in three")
            #expect(try await client.send("ACL", "WHOAMI").string == user)
            #expect(try await admin.get(key) == nil)
            #expect(try await admin.send("SELECT", 3) == .status("OK"))
            #expect(try await admin.getString(key) == "in three")
            #expect(try await admin.send("SELECT", 0) == .status("OK"))
            try await client.del(key)
            await client.close()

            // The same credentials in a URL, percent-encoded.
            let encoded = "redis://\(user):pa%3Ass%40word%25@\(configuration.host):\(configuration.port)/3"
            let fromURL = try await RedisClient.connect(configuration: RedisConfiguration(url: encoded))
            #expect(try await fromURL.send("ACL", "WHOAMI").string == user)
            await fromURL.close()
        }
    }

    @Test func commandTimeoutFailsTheCallAndTheClientRecovers() async throws {
        try await TestRedis.withClient(commandTimeout: .seconds(1)) { client throws in
            // BLPOP blocks in Redis for 30 s: the reply cannot come within the command timeout.
            let error = await #expect(throws: RedisConnectionError.self) {
                try await client.send("BLPOP", .string(TestRedis.unique("empty")), 30)
            }
            #expect(error == .commandTimeout(.seconds(1)))
            // The timeout closed the connection, so recovering means opening a new one. On a loaded
            // machine that may take longer than one call's 1 s budget: the call (which itself waits
            // for the new connection) is repeated while it is only the budget that runs out, up to
            // ten times; any other error fails the test.
            var reply: String?
            for _ in 0..<10 where reply == nil {
                do {
                    reply = try await client.ping()
                } catch RedisConnectionError.commandTimeout {
                    continue
                }
            }
            #expect(reply == "PONG")
        }
    }

    @Test func aTaskThatPrefersTheClientsTaskExecutorCallsFromTheEventLoop() async throws {
        try await TestRedis.withClient { client throws in
            let key = TestRedis.unique("pinned")
            let (value, onLoop) = try await Task(executorPreference: client.taskExecutor) {
                try await client.set(key, to: "pinned")
                let value = try await client.getString(key)
                // After the reply: the task was resumed on the connection's own thread.
                return (value, client.eventLoop.inEventLoop)
            }.value
            #expect(value == "pinned")
            #expect(onLoop)
            #expect(!client.eventLoop.inEventLoop)
            try await client.del(key)
        }
    }

    @Test func commandsCalledInOneTurnOfTheEventLoopGoOutInOneWrite() async throws {
        try await TestRedis.withClient { client throws in
            let key = TestRedis.unique("turn")
            let before = client.pipelineStatistics
            // Child tasks inherit the preference: all 16 run on the event loop, one after another in
            // the same turn, before the batch's drain (which they queue behind them) writes.
            let sum = try await Task(executorPreference: client.taskExecutor) {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<16 {
                        group.addTask { try await client.incr(key) }
                    }
                    return try await group.reduce(0, +)
                }
            }.value
            #expect(sum == (1...16).reduce(0, +))
            #expect(client.pipelineStatistics.since(before) == RedisPipelineStatistics(writes: 1, commands: 16, inFlightAfterWrites: 16))
            try await client.del(key)
        }
    }

    @Test func closedClientFailsClearly() async throws {
        let client = try await TestRedis.client()
        await client.close()
        let error = await #expect(throws: RedisConnectionError.self) { try await client.ping() }
        #expect(error == .closed)
    }
}
