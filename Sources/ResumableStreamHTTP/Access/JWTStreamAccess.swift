import Foundation
import Hummingbird
import JWTKit

/// Access by signed JWTs (``StreamAccessClaims``): creating, ingesting and cancelling need a
/// token that allows that action on that stream; reading needs one only with
/// `requireReadToken`. Tokens are checked with one key and its algorithm alone.
public struct JWTStreamAccess: StreamAccessControl {
    public let key: StreamAccessKey
    public let requireReadToken: Bool
    private let keys: JWTKeyCollection
    private let verified = VerifiedTokens()

    public init(key: StreamAccessKey, requireReadToken: Bool = false) async {
        self.key = key
        self.requireReadToken = requireReadToken
        self.keys = await key.keyCollection()
    }

    public func authorize(_ action: StreamAction, stream id: String, request: Request) async throws {
        guard action.isWrite || requireReadToken else { return }
        let token = try BearerToken.find(in: request, queryAllowed: action == .read)
        let claims = try await verify(token)
        guard claims.allows(action, on: id) else { throw APIError.forbidden(action, id) }
    }

    /// The claims of a token whose algorithm, signature and `exp` hold; `invalid_token` otherwise.
    public func verify(_ token: String) async throws(APIError) -> StreamAccessClaims {
        do {
            if let claims = try verified.claims(of: token, at: Date()) { return claims }
            // jwt-kit verifies with the collection's one key whatever the header says; the header
            // is read first only to say what is wrong with a token of another algorithm. The
            // header alone: decoding the claims here too took a fifth of the server's CPU when
            // every read carried a token.
            let algorithm = try Self.algorithm(of: token)
            guard algorithm == key.algorithm else {
                throw StreamTokenError.algorithm(found: algorithm, expected: key.algorithm)
            }
            let claims = try await keys.verify(token, as: StreamAccessClaims.self)
            verified.remember(claims, of: token)
            return claims
        } catch let error as StreamTokenError {
            throw .invalidToken(error.description)
        } catch let error as JWTError where error.errorType == .malformedToken {
            throw .invalidToken("the token is not a JWT whose claims decode as {\"exp\": <seconds>, \"streams\": [{\"actions\": [...], \"ids\": [...]}]}")
        } catch {
            throw .invalidToken("the token's signature does not hold with this service's \(key.algorithm) key")
        }
    }

    /// The `alg` of a token's header (`nil` when it names none), decoded without the claims.
    static func algorithm(of token: String) throws -> String? {
        struct Header: Decodable { let alg: String? }
        guard let end = token.firstIndex(of: ".") else {
            throw JWTError.malformedToken(reason: "a JWT has three parts separated by dots")
        }
        // base64url without padding, as JWTs carry it, to the base64 Foundation decodes.
        var base64 = String(token[..<end]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        guard let bytes = Data(base64Encoded: base64), let header = try? JSONDecoder().decode(Header.self, from: bytes) else {
            throw JWTError.malformedToken(reason: "the header is not base64url JSON")
        }
        return header.alg
    }
}
