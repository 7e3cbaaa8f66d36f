import Synchronization

/// A Lua script that a client runs by its SHA1 once Redis has it: `EVALSHA` sends 40 bytes where
/// `EVAL` sends the whole source with every call. The SHA comes from `SCRIPT LOAD` at the first
/// call; a Redis that lost its scripts (it restarted) answers `NOSCRIPT`, and the call goes again
/// with the source, which loads it once more.
public final class RedisScript: Sendable {
    public let source: String
    private let sha1 = Mutex<String?>(nil)

    public init(_ source: String) {
        self.source = source
    }

    var loaded: String? { sha1.withLock { $0 } }

    func remember(_ digest: String) {
        sha1.withLock { $0 = digest }
    }
}

extension RedisClientProtocol {
    /// Runs `script` with `keys` and `arguments`: one round trip, except the first time (and after
    /// Redis restarted), when the script is loaded first.
    nonisolated(nonsending) public func run(_ script: RedisScript, keys: [String] = [], arguments: [RedisArgument] = []) async throws -> RedisReply {
        let digest: String
        if let loaded = script.loaded {
            digest = loaded
        } else {
            digest = try await scriptLoad(script.source, forKey: keys.first)
            script.remember(digest)
        }
        do {
            return try await evalsha(digest, keys: keys, arguments: arguments)
        } catch let error as RedisServerError where error.code == "NOSCRIPT" {
            return try await eval(script.source, keys: keys, arguments: arguments)
        }
    }
}
