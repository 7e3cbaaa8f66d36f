import Hummingbird

/// Decides whether a request may do what it asks of a stream. The routes ask it first, before
/// they read the request's body or ask the broker anything; ``JWTStreamAccess`` is the service's
/// own, and an application that mounts the routes can plug in its own
/// (``ResumableStreamRoutes/Configuration/access``).
public protocol StreamAccessControl: Sendable {
    /// Returns when `request` may do `action` on the stream `id`. A refusal is an ``APIError``
    /// (``APIError/missingToken(_:)``, ``APIError/invalidToken(_:)``, ``APIError/forbidden(_:_:)``
    /// or one of the application's own); any other error is answered as a `500`.
    func authorize(_ action: StreamAction, stream id: String, request: Request) async throws
}

extension APIError {
    /// The realm that `WWW-Authenticate` names.
    static let realm = #"Bearer realm="resumable-stream""#

    /// `401 missing_token`: the request carries no token, and this action needs one.
    public static func missingToken(_ message: String) -> APIError {
        var error = APIError(.unauthorized, "missing_token", message)
        error.headers[.wwwAuthenticate] = realm
        return error
    }

    /// `401 invalid_token`: the token is malformed, its signature does not hold with this
    /// service's key, it has expired or has no `exp`, or its claims do not decode.
    public static func invalidToken(_ message: String) -> APIError {
        var error = APIError(.unauthorized, "invalid_token", message)
        error.headers[.wwwAuthenticate] = realm + #", error="invalid_token""#
        return error
    }

    /// `403 forbidden`: the token is valid, but does not allow this action on this stream.
    public static func forbidden(_ action: StreamAction, _ id: String) -> APIError {
        var error = APIError(.forbidden, "forbidden", "the token does not allow \(action.rawValue) on the stream '\(id)'")
        error.headers[.wwwAuthenticate] = realm + #", error="insufficient_scope""#
        return error
    }
}
