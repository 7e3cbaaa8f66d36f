import Synchronization

/// A Lua script that a client runs by its SHA1 once Redis has it: `EVALSHA` sends 40 bytes where
/// `EVAL` sends the whole source with every call. The SHA comes from `SCRIPT LOAD` at the first
/// call; calls that come while it loads send the source (`EVAL`, which also caches the script)
/// rather than a `SCRIPT LOAD` each. A Redis that lost its scripts (it restarted), or a cluster
/// node that never had it, answers `NOSCRIPT`, and the call goes again with the source, which loads
/// it there.
public final class RedisScript: Sendable {
    public let source: String
    private let digest = Mutex(Digest.unknown)

    enum Digest: Equatable {
        case unknown
        case loading
        case known(String)
    }

    public init(_ source: String) {
        self.source = source
    }

    /// The digest as known now; the first caller that finds it unknown is told to load it
    /// (`.unknown`), and marks it loading for the others.
    func claim() -> Digest {
        digest.withLock { digest in
            guard digest == .unknown else { return digest }
            digest = .loading
            return .unknown
        }
    }

    func loaded(_ sha1: String?) {
        digest.withLock { $0 = sha1.map(Digest.known) ?? .unknown }
    }
}

extension RedisClientProtocol {
    /// Runs `script` with `keys` and `arguments`: one round trip, except the first time (and after
    /// Redis restarted), when the script is loaded first.
    nonisolated(nonsending) public func run(_ script: RedisScript, keys: [String] = [], arguments: [RedisArgument] = []) async throws -> RedisReply {
        let sha1: String
        switch script.claim() {
        case .known(let known):
            sha1 = known
        case .loading:
            return try await eval(script.source, keys: keys, arguments: arguments)
        case .unknown:
            do {
                sha1 = try await scriptLoad(script.source, forKey: keys.first)
                script.loaded(sha1)
            } catch {
                script.loaded(nil)
                throw error
            }
        }
        do {
            return try await evalsha(sha1, keys: keys, arguments: arguments)
        } catch let error as RedisServerError where error.code == "NOSCRIPT" {
            return try await eval(script.source, keys: keys, arguments: arguments)
        }
    }
}
