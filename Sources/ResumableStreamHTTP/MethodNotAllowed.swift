import HTTPTypes
import Hummingbird

extension RouterMethods {
    /// Answers the methods that `path` does not have with `405 method_not_allowed` and an `Allow`
    /// header that lists those it has (RFC 9110): Hummingbird answers them as it answers a path
    /// that does not exist (`404`), which tells a client its URL is wrong when its method is.
    ///
    /// Called after the path's own routes. `HEAD` and `OPTIONS` are left to the application's
    /// router, which may generate `HEAD` from `GET` or answer CORS preflights in a middleware.
    public func refuseOtherMethods(_ path: RouterPath, allowing allowed: [HTTPRequest.Method]) {
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        for method in Self.refusableMethods where !allowed.contains(method) {
            on(path, method: method) { request, context in
                var response = try APIError(.methodNotAllowed, "method_not_allowed", "\(request.uri.path) takes \(allow), not \(request.method.rawValue)")
                    .response(from: request, context: context)
                response.headers[.allow] = allow
                return response
            }
        }
    }

    /// The methods a path without them refuses: those of RFC 9110 that name an action on a
    /// resource, and QUERY (a safe GET with a body, which clients have started to send).
    static var refusableMethods: [HTTPRequest.Method] {
        [.get, .post, .put, .patch, .delete, .trace] + (HTTPRequest.Method("QUERY").map { [$0] } ?? [])
    }
}
