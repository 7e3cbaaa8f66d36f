import AsyncHTTPClient
import Foundation
import NIOHTTP1
import ResumableStreamHTTP
import ResumableStreamServer
import Testing
import TestSupport

/// CORS on a real server: preflights are answered although no route has `OPTIONS`, allowed
/// origins get their headers on every response (streams and errors), others get none.
@Suite(.timeLimit(.minutes(2)))
struct CrossOriginTests {
    static let app = "https://app.example.com"
    static let demo = #"{"source":"demo","parameters":{"count":3,"intervalMs":0}}"#

    static func preflight(_ url: String, origin: String, method: String = "POST") async throws -> Answer {
        try await Answer.send(.OPTIONS, url, headers: [
            ("Origin", origin), ("Access-Control-Request-Method", method),
            ("Access-Control-Request-Headers", "authorization, content-type"),
        ])
    }

    static func expectAllowed(_ answer: Answer, origin: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(answer.header("Access-Control-Allow-Origin") == origin, sourceLocation: sourceLocation)
        #expect(answer.headers["Vary"].contains("Origin"), sourceLocation: sourceLocation)
        let exposed = Set((answer.header("Access-Control-Expose-Headers") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        #expect(exposed.isSuperset(of: ["Stream-State", "Stream-Length", "Stream-Error", "WWW-Authenticate"]), sourceLocation: sourceLocation)
    }

    @Test func aPreflightFromAnAllowedOriginIsAnsweredWithoutAnOptionsRoute() async throws {
        try await withServers(1, redis: false, { $0.corsAllowedOrigins = [Self.app, "http://localhost:3000"] }) { servers in
            for path in ["/streams/p-1", "/streams/p-1/ingest", "/streams/p-1/status"] {
                let answer = try await Self.preflight(servers[0].base + path, origin: Self.app)
                #expect(answer.status == 204, "\(path)")
                #expect(answer.header("Access-Control-Allow-Origin") == Self.app)
                #expect(answer.headers["Vary"].contains("Origin"))
                #expect(answer.header("Access-Control-Allow-Methods") == "GET, HEAD, POST, DELETE")
                let allowed = Set((answer.header("Access-Control-Allow-Headers") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
                #expect(allowed.isSuperset(of: ["authorization", "content-type", "last-event-id", "stream-offset"]))
                #expect(Int(answer.header("Access-Control-Max-Age") ?? "") ?? 0 > 0)
            }
        }
    }

    @Test func aPreflightFromARefusedOriginIsA403() async throws {
        try await withServers(1, redis: false, { $0.corsAllowedOrigins = [Self.app] }) { servers in
            for origin in ["https://evil.example.com", "http://app.example.com", "null"] {
                let answer = try await Self.preflight("\(servers[0].base)/streams/p-1", origin: origin)
                #expect(answer.status == 403, "\(origin)")
                #expect(answer.error == "cors_origin_refused", "\(origin)")
                #expect(answer.header("Access-Control-Allow-Origin") == nil, "\(origin)")
                #expect(answer.header("Access-Control-Allow-Methods") == nil, "\(origin)")
            }
        }
    }

    /// A stream response and error responses carry the headers, so that a page can read the
    /// stream, `HEAD`'s state, and why it was refused; another origin's responses do not.
    @Test func responsesToAnAllowedOriginCarryTheHeaders() async throws {
        try await withServers(1, redis: false, { $0.corsAllowedOrigins = [Self.app] }) { servers in
            let base = servers[0].base
            let origin = [("Origin", Self.app)]
            let created = try await Client.send(Client.request(.POST, "\(base)/streams/c-1", body: Self.demo, headers: origin))
            #expect(created.status == .ok)
            #expect(created.headers.first(name: "Access-Control-Allow-Origin") == Self.app)
            #expect(created.headers.first(name: "Access-Control-Expose-Headers")?.contains("Stream-State") == true)
            #expect(try await Client.read(created).text == demoText(3))

            let head = try await Answer.send(.HEAD, "\(base)/streams/c-1", headers: origin)
            #expect(head.header("Stream-State") == "finished" || head.header("Stream-State") == "live")
            Self.expectAllowed(head, origin: Self.app)

            let missing = try await Answer.send(.GET, "\(base)/streams/c-unknown", headers: origin)
            #expect(missing.status == 404)
            #expect(missing.error == "stream_not_found")
            Self.expectAllowed(missing, origin: Self.app)

            let noRoute = try await Answer.send(.GET, "\(base)/nowhere", headers: origin)
            #expect(noRoute.status == 404)
            Self.expectAllowed(noRoute, origin: Self.app)

            let other = try await Answer.send(.GET, "\(base)/streams/c-unknown", headers: [("Origin", "https://evil.example.com")])
            #expect(other.status == 404)
            #expect(other.header("Access-Control-Allow-Origin") == nil)
            #expect(other.headers["Vary"].contains("Origin"))
        }
    }

    /// A refused token's answer reaches the page with its `WWW-Authenticate`.
    @Test func aRefusedTokenReachesThePage() async throws {
        try await withServers(1, redis: false, { $0.corsAllowedOrigins = [Self.app]; $0.jwtSecret = TestTokens.secret }) { servers in
            let answer = try await Answer.send(.POST, "\(servers[0].base)/streams/t-1", body: Self.demo, headers: [("Origin", Self.app)])
            #expect(answer.status == 401)
            #expect(answer.error == "missing_token")
            #expect(answer.header("WWW-Authenticate") == #"Bearer realm="resumable-stream""#)
            Self.expectAllowed(answer, origin: Self.app)
        }
    }

    @Test func aStarAllowsAnyOrigin() async throws {
        try await withServers(1, redis: false, { $0.corsAllowedOrigins = ["*"] }) { servers in
            let base = servers[0].base
            let preflight = try await Self.preflight("\(base)/streams/s-1", origin: "https://anyone.example", method: "DELETE")
            #expect(preflight.status == 204)
            #expect(preflight.header("Access-Control-Allow-Origin") == "*")
            let created = try await Client.send(Client.request(.POST, "\(base)/streams/s-1", body: Self.demo, headers: [("Origin", "https://anyone.example")]))
            #expect(created.headers.first(name: "Access-Control-Allow-Origin") == "*")
            _ = try await Client.read(created)
            Self.expectAllowed(try await Answer.send(.GET, "\(base)/streams/s-1/status", headers: [("Origin", "http://localhost:8000")]), origin: "*")
        }
    }

    /// Without allowed origins, nothing changes: no CORS header, and `OPTIONS` has no route.
    @Test func withoutOriginsThereAreNoCORSHeaders() async throws {
        try await withServers(1, redis: false) { servers in
            let base = servers[0].base
            let preflight = try await Self.preflight("\(base)/streams/n-1", origin: Self.app)
            #expect(preflight.status != 204)
            #expect(preflight.header("Access-Control-Allow-Origin") == nil)
            let created = try await Client.send(Client.request(.POST, "\(base)/streams/n-1", body: Self.demo, headers: [("Origin", Self.app)]))
            #expect(created.headers.first(name: "Access-Control-Allow-Origin") == nil)
            #expect(created.headers.first(name: "Vary") == nil)
            _ = try await Client.read(created)
        }
    }
}
