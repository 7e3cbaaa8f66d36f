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
            // jwt-kit verifies with the collection's one key whatever the header says; the header
            // is read first only to say what is wrong with a token of another algorithm.
            let header = try DefaultJWTParser().parse(Array(token.utf8), as: StreamAccessClaims.self).header
            guard header.alg == key.algorithm else {
                throw StreamTokenError.algorithm(found: header.alg, expected: key.algorithm)
            }
            return try await keys.verify(token, as: StreamAccessClaims.self)
        } catch let error as StreamTokenError {
            throw .invalidToken(error.description)
        } catch let error as JWTError where error.errorType == .malformedToken {
            throw .invalidToken("the token is not a JWT whose claims decode as {\"exp\": <seconds>, \"streams\": [{\"actions\": [...], \"ids\": [...]}]}")
        } catch {
            throw .invalidToken("the token's signature does not hold with this service's \(key.algorithm) key")
        }
    }
}
