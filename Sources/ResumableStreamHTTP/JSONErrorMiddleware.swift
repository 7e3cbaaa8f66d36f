import Hummingbird

/// Gives the errors that Hummingbird raises itself (no such route, a body too large, a method
/// not allowed) the same JSON body as the routes' own errors, so that every refusal a client
/// gets says what was wrong in one format.
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            throw APIError(error.status, Self.code(error.status), error.body ?? error.status.reasonPhrase.lowercased())
        }
    }

    static func code(_ status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: return "not_found"
        case .methodNotAllowed: return "method_not_allowed"
        case .contentTooLarge: return "body_too_large"
        case .badRequest: return "bad_request"
        default: return "http_\(status.code)"
        }
    }
}
