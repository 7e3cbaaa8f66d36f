import NIOCore
import Testing

@testable import Redis

@Suite("Redis configuration")
struct RedisConfigurationTests {
    // MARK: URL

    @Test func aHostAloneTakesTheDefaults() throws {
        let configuration = try RedisConfiguration(url: "redis://cache.internal")
        #expect(configuration.host == "cache.internal")
        #expect(configuration.port == 6379)
        #expect(configuration.database == 0)
        #expect(configuration.username == nil)
        #expect(configuration.password == nil)
        #expect(configuration.commandTimeout == RedisConfiguration().commandTimeout)
    }

    @Test func readsThePort() throws {
        let configuration = try RedisConfiguration(url: "redis://cache.internal:6380")
        #expect(configuration.host == "cache.internal")
        #expect(configuration.port == 6380)
    }

    @Test func readsTheDatabase() throws {
        let configuration = try RedisConfiguration(url: "redis://cache.internal:6380/7")
        #expect(configuration.port == 6380)
        #expect(configuration.database == 7)
        #expect(try RedisConfiguration(url: "redis://h/").database == 0)
    }

    @Test func readsAPasswordWithoutAUser() throws {
        let configuration = try RedisConfiguration(url: "redis://:secret@h")
        #expect(configuration.username == nil)
        #expect(configuration.password == "secret")
        #expect(configuration.host == "h")
    }

    @Test func readsAUserAndPassword() throws {
        let configuration = try RedisConfiguration(url: "redis://alice:secret@h:6380/2")
        #expect(configuration.username == "alice")
        #expect(configuration.password == "secret")
        #expect(configuration.host == "h")
        #expect(configuration.port == 6380)
        #expect(configuration.database == 2)
    }

    @Test func readsUserInfoWithoutAColonAsAPassword() throws {
        let configuration = try RedisConfiguration(url: "redis://secret@h")
        #expect(configuration.username == nil)
        #expect(configuration.password == "secret")
    }

    @Test func percentDecodesTheCredentials() throws {
        let configuration = try RedisConfiguration(url: "redis://al%69ce:p%40ss%2Fw%3a%C3%A9@h")
        #expect(configuration.username == "alice")
        #expect(configuration.password == "p@ss/w:é")
    }

    @Test func keepsColonsAndAtSignsInThePassword() throws {
        let configuration = try RedisConfiguration(url: "redis://alice:a:b@c@h")
        #expect(configuration.username == "alice")
        #expect(configuration.password == "a:b@c")
        #expect(configuration.host == "h")
    }

    @Test func rediss() throws {
        let configuration = try RedisConfiguration(url: "rediss://alice:secret@cache.example:6380/2")
        #expect(configuration.tls == RedisTLS())
        #expect(configuration.host == "cache.example")
        #expect(configuration.port == 6380)
        #expect(configuration.database == 2)
        #expect(configuration.description == "rediss://alice@cache.example:6380/2")
        #expect(try RedisConfiguration(url: "redis://h").tls == nil)
    }

    @Test func readsABracketedIPv6Host() throws {
        let configuration = try RedisConfiguration(url: "redis://[::1]:6380/3")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 6380)
        #expect(configuration.database == 3)
        #expect(try RedisConfiguration(url: "redis://[::1]").port == 6379)
    }

    @Test(arguments: [
        "http://h",
        "rediss:/h",
        "h:6379",
        "redis://",
        "redis://:6379",
        "redis://secret@",
        "redis:///0",
        "redis://h:0",
        "redis://h:70000",
        "redis://h:abc",
        "redis://h:",
        "redis://h/-1",
        "redis://h/one",
        "redis://h/0/1",
        "redis://h?db=1",
        "redis://h/0?timeout=1",
        "redis://h#fragment",
        "redis://:p%4@h",
        "redis://:p%zzss@h",
        "redis://:p%@h",
        "redis://[::1",
        "redis://[::1]6379",
        "redis://[]:6379",
    ])
    func rejectsAnInvalidURL(_ url: String) {
        #expect(throws: RedisConfigurationError.self) { try RedisConfiguration(url: url) }
    }

    // MARK: Description

    @Test(arguments: [
        "redis://:hunter2@h",
        "redis://hunter2@h",
        "redis://alice:hunter2@h",
        "redis://alice:hunter2@[::1]:6380/4",
    ])
    func descriptionNeverShowsThePassword(_ url: String) throws {
        let configuration = try RedisConfiguration(url: url)
        #expect(!configuration.description.contains("hunter2"))
        #expect(!String(reflecting: configuration).contains("hunter2"))
    }

    @Test func descriptionShowsWhereRedisIs() throws {
        #expect(try RedisConfiguration(url: "redis://alice:pw@h:6380/4").description == "redis://alice@h:6380/4")
        #expect(try RedisConfiguration(url: "redis://:pw@[::1]").description == "redis://***@[::1]:6379/0")
        #expect(try RedisConfiguration(url: "redis://h").description == "redis://h:6379/0")
    }

    // MARK: Reconnect delay

    @Test func theFirstRetryWaitsTheInitialDelay() {
        let configuration = RedisConfiguration(reconnectInitialDelay: .milliseconds(50), reconnectMaximumDelay: .seconds(5))
        #expect(configuration.reconnectDelay(attempt: 0) == .milliseconds(50))
    }

    @Test func theDelayDoublesOnEveryAttempt() {
        let configuration = RedisConfiguration(reconnectInitialDelay: .milliseconds(50), reconnectMaximumDelay: .seconds(5))
        let delays = (0..<5).map { configuration.reconnectDelay(attempt: $0) }
        #expect(delays == [.milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800)])
    }

    @Test func theDelayIsCappedAtTheMaximum() {
        let configuration = RedisConfiguration(reconnectInitialDelay: .milliseconds(50), reconnectMaximumDelay: .seconds(5))
        #expect(configuration.reconnectDelay(attempt: 6) == .milliseconds(3200))
        #expect(configuration.reconnectDelay(attempt: 7) == .seconds(5))
        #expect(configuration.reconnectDelay(attempt: 30) == .seconds(5))
    }

    @Test(arguments: [63, 64, 1000, Int.max])
    func aHugeAttemptNumberStaysAtTheMaximum(_ attempt: Int) {
        let configuration = RedisConfiguration(reconnectInitialDelay: .milliseconds(50), reconnectMaximumDelay: .seconds(5))
        #expect(configuration.reconnectDelay(attempt: attempt) == .seconds(5))
    }

    @Test func aMaximumBelowTheInitialDelayMeansTheInitialDelay() {
        let configuration = RedisConfiguration(reconnectInitialDelay: .seconds(2), reconnectMaximumDelay: .seconds(1))
        #expect(configuration.reconnectDelay(attempt: 0) == .seconds(2))
        #expect(configuration.reconnectDelay(attempt: 10) == .seconds(2))
    }
}
