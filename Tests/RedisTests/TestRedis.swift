import Foundation
import Logging
import NIOCore
import Redis
import TestSupport
import Testing

/// The redis-server that the test command started (see scripts/test).
enum TestRedis {
    struct MissingServer: Error, CustomStringConvertible {
        var description: String { "REDIS_URL is not set: run the tests with scripts/test, which starts a redis-server" }
    }

    static func configuration(name: String? = nil) throws -> RedisConfiguration {
        guard let url = ProcessInfo.processInfo.environment["REDIS_URL"] else { throw MissingServer() }
        var configuration = try RedisConfiguration(url: url)
        configuration.clientName = name
        return configuration
    }

    static func client(name: String? = nil, commandTimeout: TimeAmount? = nil) async throws -> RedisClient {
        var configuration = try configuration(name: name)
        if let commandTimeout { configuration.commandTimeout = commandTimeout }
        return try await RedisClient.connect(configuration: configuration)
    }

    /// Runs `body` with a connected client and closes it afterwards, whatever happens.
    static func withClient<Result>(
        name: String? = nil,
        commandTimeout: TimeAmount? = nil,
        _ body: (RedisClient) async throws -> Result
    ) async throws -> Result {
        try await using(client(name: name, commandTimeout: commandTimeout), close: { await $0.close() }, body)
    }

    /// Runs `body` with a connected subscriber and closes it afterwards, whatever happens.
    static func withSubscriber<Result>(
        name: String? = nil,
        bufferSize: Int = 1024,
        _ body: (RedisSubscriber) async throws -> Result
    ) async throws -> Result {
        try await using(subscriber(name: name, bufferSize: bufferSize), close: { await $0.close() }, body)
    }

    static func subscriber(name: String? = nil, bufferSize: Int = 1024) async throws -> RedisSubscriber {
        try await RedisSubscriber.connect(configuration: configuration(name: name), bufferSize: bufferSize)
    }

    /// A key or channel name no other test uses.
    static func unique(_ prefix: String) -> String {
        "test:\(prefix):\(UUID().uuidString)"
    }

    /// Kills the connections whose client name is `name`, as an operator would with CLIENT KILL.
    static func kill(clientNamed name: String, using admin: RedisClient) async throws -> Int {
        let list = try await admin.send("CLIENT", "LIST").string ?? ""
        var killed = 0
        for line in list.split(separator: "\n") {
            let fields = Dictionary(
                line.split(separator: " ").compactMap { field -> (Substring, Substring)? in
                    guard let equals = field.firstIndex(of: "=") else { return nil }
                    return (field[..<equals], field[field.index(after: equals)...])
                },
                uniquingKeysWith: { first, _ in first }
            )
            guard fields["name"] == Substring(name), let id = fields["id"] else { continue }
            killed += try await admin.send("CLIENT", "KILL", "ID", .string(String(id))).integer ?? 0
        }
        return killed
    }

    /// How many connections carry the client name `name`.
    static func connections(named name: String, using admin: RedisClient) async throws -> Int {
        let list = try await admin.send("CLIENT", "LIST").string ?? ""
        return list.split(separator: "\n").filter { $0.contains(" name=\(name) ") }.count
    }
}
