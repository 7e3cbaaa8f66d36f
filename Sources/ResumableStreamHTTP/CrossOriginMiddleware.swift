import Hummingbird

/// CORS for the API. A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
/// is answered here, `204` for an allowed origin and `403 cors_origin_refused` for another, so it
/// needs no route: Hummingbird sends a request whose method has no route through the router's
/// middlewares to its not-found responder, and this middleware answers before that. Every other
/// response to an allowed origin, errors and streams included, carries `Access-Control-Allow-Origin`
/// and the headers a page may read. Every response carries `Vary: Origin`, so that a cache does
/// not give one origin's answer to another.
///
/// Add it to the router before the routes (middlewares apply to the routes added after them) and
/// before ``JSONErrorMiddleware``, whose errors it adds its headers to.
public struct CrossOriginMiddleware<Context: RequestContext>: RouterMiddleware {
    public let policy: CrossOriginPolicy

    public init(policy: CrossOriginPolicy) {
        self.policy = policy
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var headers: HTTPFields = [.vary: "Origin"]
        let allowOrigin = request.headers[.origin].flatMap { policy.allowOrigin(for: $0) }
        if let origin = request.headers[.origin], request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            guard let allowOrigin else {
                var error = APIError(.forbidden, "cors_origin_refused", "pages of the origin '\(origin.prefix(200))' may not call this service")
                error.headers = headers
                throw error
            }
            headers.append(contentsOf: policy.preflightHeaders(allowOrigin: allowOrigin))
            return Response(status: .noContent, headers: headers)
        }
        if let allowOrigin {
            headers.append(contentsOf: policy.responseHeaders(allowOrigin: allowOrigin))
        }
        do {
            var response = try await next(request, context)
            response.headers.append(contentsOf: headers)
            return response
        } catch var error as APIError {
            error.headers.append(contentsOf: headers)
            throw error
        } catch let error as any HTTPResponseError {
            var response = try error.response(from: request, context: context)
            response.headers.append(contentsOf: headers)
            return response
        }
    }
}
