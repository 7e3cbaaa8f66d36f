import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing

/// What fuzzing the server against its OpenAPI document (`docs/openapi.yaml`, the fault suite's
/// `OpenAPITests`) found, each kept from coming back.
@Suite(.timeLimit(.minutes(2)))
struct APIConformanceTests {
    struct Refused: CustomStringConvertible, Sendable {
        let method: HTTPMethod
        let path: String
        let allow: String
        var description: String { "\(method) \(path) → 405, Allow: \(allow)" }
    }

    static let refused: [Refused] = [
        Refused(method: .PUT, path: "/streams/a", allow: "GET, HEAD, POST, DELETE"),
        Refused(method: .PATCH, path: "/streams/a", allow: "GET, HEAD, POST, DELETE"),
        Refused(method: .GET, path: "/streams/a/ingest", allow: "POST"),
        Refused(method: .DELETE, path: "/streams/a/status", allow: "GET"),
        Refused(method: .TRACE, path: "/healthz", allow: "GET"),
        Refused(method: .POST, path: "/readyz", allow: "GET"),
        Refused(method: .PUT, path: "/metrics", allow: "GET"),
        Refused(method: .POST, path: "/", allow: "GET"),
        Refused(method: .RAW(value: "QUERY"), path: "/openapi.yaml", allow: "GET"),
    ]

    /// A method that a path does not have is `405` with the methods it has in `Allow` and the JSON
    /// error, not the `404` of a path that does not exist (Hummingbird answers both alike).
    @Test(arguments: refused)
    func aMethodThePathDoesNotHaveIsNotAllowed(_ refused: Refused) async throws {
        try await withServers(1, redis: false) { servers in
            let response = try await Client.send(Client.request(refused.method, servers[0].base + refused.path))
            let body = try await response.body.collect(upTo: 1 << 16)
            let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
            #expect(response.status == .methodNotAllowed)
            #expect(response.headers.first(name: "Allow") == refused.allow)
            #expect(object["error"] as? String == "method_not_allowed")
        }
    }

    /// An id whose percent-encoding is not UTF-8 is `400 invalid_stream_id`. Sent on a socket of
    /// its own: Foundation's URL gives such a URL an empty path, so AsyncHTTPClient asks for `/`.
    @Test func anIdThatIsNotUTF8IsInvalid() async throws {
        try await withServers(1, redis: false) { servers in
            let connection = try await RawConnection.connect(port: servers[0].port)
            try await connection.write("POST /streams/a%ff HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            let answer = try await connection.readToClose()
            #expect(answer.hasPrefix("HTTP/1.1 400 "), "\(answer)")
            #expect(answer.contains(#""error":"invalid_stream_id""#), "\(answer)")
        }
    }

    /// `Last-Event-ID` wins over `resumeAt`, and a malformed `resumeAt` is refused all the same
    /// (it was ignored when the header came with it).
    @Test func aMalformedResumeAtIsRefusedBesideALastEventID() async throws {
        try await withServers(1, redis: false) { servers in
            let (status, object) = try await Client.json(.GET, "\(servers[0].base)/streams/a?resumeAt=null", headers: [("Last-Event-ID", "4")])
            #expect(status == 400)
            #expect(object["error"] as? String == "invalid_offset")
            #expect((object["message"] as? String)?.hasPrefix("resumeAt") == true)
        }
    }

    /// A durable stream that has ended refuses an offset past its end with `416` before the
    /// response starts, as a finished stream in memory does, rather than a `200` whose stream
    /// fails at once (in raw mode: a body broken off).
    @Test func anOffsetPastTheEndOfAStoredStreamIsRefusedBeforeTheResponse() async throws {
        try await withServers(1, { $0.durability = .redis; $0.replayGrace = .zero }) { servers in
            let base = servers[0].base
            let created = try await Client.read(try await Client.create(base, "ended", body: #"{"source":"demo","parameters":{"count":2,"intervalMs":0}}"#))
            let length = try #require(created.end?.offset)
            for format in ["sse", "raw"] {
                let (status, object) = try await Client.json(.GET, "\(base)/streams/ended?format=\(format)&resumeAt=\(length + 1)")
                #expect(status == 416, "format=\(format)")
                #expect(object["error"] as? String == "invalid_offset", "format=\(format)")
            }
            let atTheEnd = try await Client.read(try await Client.follow(base, "ended", query: "?resumeAt=\(length)"))
            #expect(atTheEnd.end == StreamEnd(status: "completed", offset: length, error: nil))
            try await expectNothingLeft(servers[0])
        }
    }
}
