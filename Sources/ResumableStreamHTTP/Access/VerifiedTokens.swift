import Foundation
import Synchronization

/// Tokens whose signature has held, by their exact text. A client sends the same token with every
/// request of a session (each resume, each `HEAD`), and verifying it again (a hop onto jwt-kit's
/// key collection, an actor, and a JSON decode of its claims) took the server from 27k to 12k
/// `HEAD`s a second in the access benchmark. The same bytes verified once verify again, so only
/// the expiry is checked at each use. Bounded: when full, it starts over.
final class VerifiedTokens: Sendable {
    private let claims = Mutex<[String: StreamAccessClaims]>([:])
    let capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    /// The claims of `token` if it was verified before: `nil` if not; throws, and forgets it, if
    /// it has expired since.
    func claims(of token: String, at now: Date) throws(StreamTokenError) -> StreamAccessClaims? {
        guard let found = claims.withLock({ $0[token] }) else { return nil }
        do {
            try found.check(at: now)
        } catch {
            _ = claims.withLock { $0.removeValue(forKey: token) }
            throw error
        }
        return found
    }

    func remember(_ verified: StreamAccessClaims, of token: String) {
        claims.withLock { claims in
            if claims.count >= capacity { claims.removeAll(keepingCapacity: true) }
            claims[token] = verified
        }
    }

    var count: Int { claims.withLock { $0.count } }
}
