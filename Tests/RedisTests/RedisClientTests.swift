import NIOCore
import Redis
import Testing

@Suite("Redis client against redis-server")
struct RedisClientTests {
    @Test func pingGetSetIncrExpireDel() async throws {
        let client = try await TestRedis.client()
        defer { Task { await client.close() } }
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
        #expect(try await client.del([key, key + ":none"]) == 1)
        #expect(try await client.expire(key, seconds: 10) == false)
    }
}
