import Foundation
import JWTKit

/// The claims of a token that grants access to streams:
///
/// ```json
/// {"exp": 1764590000, "sub": "user-42",
///  "streams": [{"actions": ["create", "ingest", "cancel", "read"], "ids": ["chat-42-*", "log-7"]}]}
/// ```
///
/// `exp` (seconds since 1970) is required; a token without it is refused, so that no token is good
/// forever. Each grant allows its actions on the ids its patterns match; a token allows what any
/// of its grants allows, and a token with no `streams` allows nothing. `sub` is not checked: it
/// says whom the token was made for. Other claims are ignored.
public struct StreamAccessClaims: JWTPayload, Equatable {
    public struct Grant: Codable, Sendable, Equatable {
        /// An action that is not one of the four makes the claims fail to decode.
        public var actions: Set<StreamAction>
        public var ids: [StreamIdPattern]

        public init(actions: Set<StreamAction>, ids: [StreamIdPattern]) {
            self.actions = actions
            self.ids = ids
        }

        public func allows(_ action: StreamAction, on id: String) -> Bool {
            actions.contains(action) && ids.contains { $0.matches(id) }
        }
    }

    /// Optional here only so that a token without it is told apart from a malformed one;
    /// ``check(at:)`` refuses it.
    public var exp: ExpirationClaim?
    public var sub: SubjectClaim?
    public var streams: [Grant]

    public init(exp: ExpirationClaim?, sub: SubjectClaim? = nil, streams: [Grant]) {
        self.exp = exp
        self.sub = sub
        self.streams = streams
    }

    enum CodingKeys: String, CodingKey {
        case exp, sub, streams
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        exp = try container.decodeIfPresent(ExpirationClaim.self, forKey: .exp)
        sub = try container.decodeIfPresent(SubjectClaim.self, forKey: .sub)
        streams = try container.decodeIfPresent([Grant].self, forKey: .streams) ?? []
    }

    public func allows(_ action: StreamAction, on id: String) -> Bool {
        streams.contains { $0.allows(action, on: id) }
    }

    /// Throws unless the token has an `exp` that is after `now`.
    public func check(at now: Date) throws(StreamTokenError) {
        guard let exp else { throw .noExpiry }
        guard now < exp.value else { throw .expired(exp.value) }
    }

    /// What jwt-kit calls once the signature holds.
    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try check(at: Date())
    }
}

/// Why a token whose form is right is still not taken.
public enum StreamTokenError: Error, Equatable, CustomStringConvertible {
    case noExpiry
    case expired(Date)
    /// The header names another algorithm than the one this service verifies with.
    case algorithm(found: String?, expected: String)

    public var description: String {
        switch self {
        case .noExpiry:
            return "the token has no exp claim: tokens must expire"
        case .expired(let date):
            return "the token expired at \(Int(date.timeIntervalSince1970)) (exp)"
        case .algorithm(let found, let expected):
            return "the token is signed with \(found.map { "'\($0)'" } ?? "no algorithm"); this service takes \(expected)"
        }
    }
}
