import NIOCore

/// What sends commands: one node's ``RedisClient``, or a ``RedisClusterClient`` that sends each
/// command to the node that serves its key. The typed commands and scripts are written once, here.
public protocol RedisClientProtocol: Sendable {
    /// Sends any command and returns its reply; an error reply is thrown as ``RedisServerError``.
    nonisolated(nonsending) func send(_ arguments: [RedisArgument]) async throws -> RedisReply
    /// Sends a command that names no key (`SCRIPT LOAD`) to the node that serves `key`, where
    /// the command that follows it will go. One Redis serves every key.
    nonisolated(nonsending) func send(_ arguments: [RedisArgument], onNodeOf key: String) async throws -> RedisReply
}

extension RedisClientProtocol {
    nonisolated(nonsending) public func send(_ arguments: [RedisArgument], onNodeOf key: String) async throws -> RedisReply {
        try await send(arguments)
    }
}

/// The commands the coordinator uses, typed. Anything else goes through ``RedisClientProtocol/send(_:)-(RedisArgument...)``.
///
/// Every call is `nonisolated(nonsending)`, like `send`: it runs on its caller's executor instead of
/// hopping to the global pool first, so a caller on the connection's event loop stays there.
extension RedisClientProtocol {
    /// Sends any command and returns its reply.
    nonisolated(nonsending) public func send(_ arguments: RedisArgument...) async throws -> RedisReply {
        try await send(arguments)
    }

    /// `PING`: returns `PONG`.
    nonisolated(nonsending) public func ping() async throws -> String {
        try await send("PING").string ?? ""
    }

    /// `GET`: the value's bytes, or `nil` when the key does not exist.
    nonisolated(nonsending) public func get(_ key: String) async throws -> ByteBuffer? {
        try await send("GET", .string(key)).bytes
    }

    /// `GET`, decoded as UTF-8.
    nonisolated(nonsending) public func getString(_ key: String) async throws -> String? {
        try await get(key).map { String(buffer: $0) }
    }

    /// `SET` with optional `EX` and `NX`.
    ///
    /// - Returns: `false` when `onlyIfNotExists` is set and the key already existed; `true` otherwise.
    @discardableResult
    nonisolated(nonsending) public func set(
        _ key: String,
        to value: RedisArgument,
        expireInSeconds: Int? = nil,
        onlyIfNotExists: Bool = false
    ) async throws -> Bool {
        var arguments: [RedisArgument] = ["SET", .string(key), value]
        if let expireInSeconds {
            arguments += ["EX", .integer(expireInSeconds)]
        }
        if onlyIfNotExists {
            arguments.append("NX")
        }
        return try await !send(arguments).isNull
    }

    /// `INCR`: the value after the increment.
    @discardableResult
    nonisolated(nonsending) public func incr(_ key: String) async throws -> Int {
        try await integer(send("INCR", .string(key)), of: "INCR")
    }

    /// `EXPIRE`: `true` when the key exists and now expires.
    @discardableResult
    nonisolated(nonsending) public func expire(_ key: String, seconds: Int) async throws -> Bool {
        try await integer(send("EXPIRE", .string(key), .integer(seconds)), of: "EXPIRE") == 1
    }

    /// `DEL`: how many of the keys existed.
    @discardableResult
    nonisolated(nonsending) public func del(_ keys: String...) async throws -> Int {
        try await del(keys)
    }

    /// `DEL`: how many of the keys existed.
    @discardableResult
    nonisolated(nonsending) public func del(_ keys: [String]) async throws -> Int {
        try await integer(send(["DEL"] + keys.map(RedisArgument.string)), of: "DEL")
    }

    /// `PUBLISH`: how many subscribers (connections) received the message.
    @discardableResult
    nonisolated(nonsending) public func publish(_ message: RedisArgument, to channel: String) async throws -> Int {
        try await integer(send("PUBLISH", .string(channel), message), of: "PUBLISH")
    }

    /// `SPUBLISH` (Redis 7): publishes on a shard channel, which lives on the node of its slot;
    /// returns how many subscribers of that node received it.
    @discardableResult
    nonisolated(nonsending) public func spublish(_ message: RedisArgument, to channel: String) async throws -> Int {
        try await integer(send("SPUBLISH", .string(channel), message), of: "SPUBLISH")
    }

    /// `EVAL`: runs a Lua script.
    nonisolated(nonsending) public func eval(_ script: String, keys: [String] = [], arguments: [RedisArgument] = []) async throws -> RedisReply {
        try await send(["EVAL", .string(script), .integer(keys.count)] + keys.map(RedisArgument.string) + arguments)
    }

    /// `EVALSHA`: runs a script loaded before; throws a ``RedisServerError`` with code `NOSCRIPT` if
    /// Redis does not know it.
    nonisolated(nonsending) public func evalsha(_ sha1: String, keys: [String] = [], arguments: [RedisArgument] = []) async throws -> RedisReply {
        try await send(["EVALSHA", .string(sha1), .integer(keys.count)] + keys.map(RedisArgument.string) + arguments)
    }

    /// `SCRIPT LOAD`: the script's SHA1, for ``evalsha(_:keys:arguments:)``. On a cluster, on the
    /// node of `key` (the script's first key), where it will run.
    nonisolated(nonsending) public func scriptLoad(_ script: String, forKey key: String? = nil) async throws -> String {
        let arguments: [RedisArgument] = ["SCRIPT", "LOAD", .string(script)]
        let reply: RedisReply
        if let key {
            reply = try await send(arguments, onNodeOf: key)
        } else {
            reply = try await send(arguments)
        }
        guard let sha1 = reply.string else {
            throw RedisProtocolError(message: "SCRIPT LOAD did not return a digest")
        }
        return sha1
    }

    private func integer(_ reply: RedisReply, of command: String) throws -> Int {
        guard case .integer(let value) = reply else {
            throw RedisProtocolError(message: "\(command) returned \(reply) instead of an integer")
        }
        return value
    }
}
