import Foundation
import HTTPTypes

/// Which web pages of other origins may call the API from a browser (CORS), and which headers
/// they may send and read. ``CrossOriginMiddleware`` carries it out.
public struct CrossOriginPolicy: Sendable, Equatable {
    /// Exact origins as browsers send them (`https://app.example.com`, `http://localhost:3000`),
    /// lowercased; or `*` for any.
    public let allowedOrigins: Set<String>
    /// How long a browser may keep a preflight's answer, in seconds (Chromium keeps it 2 hours at most).
    public var maxAgeSeconds = 600

    /// `origins` are `*` or `scheme://host[:port]`, with no path; a trailing `/` is dropped.
    public init(allowedOrigins origins: [String]) throws(StreamAccessConfigurationError) {
        var allowed: Set<String> = []
        for origin in origins {
            var origin = origin.trimmingCharacters(in: .whitespaces).lowercased()
            if origin.hasSuffix("/") { origin.removeLast() }
            guard origin == "*" || Self.isOrigin(origin) else {
                throw StreamAccessConfigurationError("'\(origin)' is not an origin: write scheme://host[:port] (https://app.example.com), or * for any")
            }
            allowed.insert(origin)
        }
        guard !allowed.isEmpty else {
            throw StreamAccessConfigurationError("no CORS origin given: list origins, or * for any")
        }
        self.allowedOrigins = allowed
    }

    static func isOrigin(_ text: String) -> Bool {
        for scheme in ["http://", "https://"] where text.hasPrefix(scheme) {
            let authority = text.dropFirst(scheme.count)
            return !authority.isEmpty && !authority.contains { "/?#@ ".contains($0) }
        }
        return false
    }

    /// What `Access-Control-Allow-Origin` says to a request from `origin`: `*` when any origin
    /// may call, the origin itself when it is listed; `nil` when it is refused.
    public func allowOrigin(for origin: String) -> String? {
        if allowedOrigins.contains("*") { return "*" }
        return allowedOrigins.contains(origin.lowercased()) ? origin : nil
    }

    /// The methods the routes answer.
    public static let allowMethods = "GET, HEAD, POST, DELETE"
    /// What a page may send beyond the headers every request may carry: a token, a JSON body,
    /// where to resume, where an ingest goes on.
    public static let allowHeaders = "Authorization, Content-Type, Last-Event-ID, Stream-Offset"
    /// The headers of ours a page reads: a stream's state, length and error (`HEAD`, and the
    /// `409` of an ingest), and why a token was refused.
    public static let exposeHeaders = "Stream-State, Stream-Length, Stream-Error, WWW-Authenticate"

    /// The answer to an allowed preflight, beside `Vary: Origin`.
    func preflightHeaders(allowOrigin: String) -> HTTPFields {
        [
            .accessControlAllowOrigin: allowOrigin,
            .accessControlAllowMethods: Self.allowMethods,
            .accessControlAllowHeaders: Self.allowHeaders,
            .accessControlMaxAge: String(maxAgeSeconds),
        ]
    }

    /// What an allowed origin's responses carry, beside `Vary: Origin`.
    func responseHeaders(allowOrigin: String) -> HTTPFields {
        [
            .accessControlAllowOrigin: allowOrigin,
            .accessControlExposeHeaders: Self.exposeHeaders,
        ]
    }
}
