import AsyncHTTPClient
import Foundation
import JWTKit
import NIOCore
import NIOHTTP1
import ResumableStreamHTTP
import ResumableStreamServer
import Testing
import TestSupport

/// Write access with JWTs, on a real server: each way a token can be wrong is refused with its
/// status, code and `WWW-Authenticate`, before anything happens to the stream; the right token
/// works with each kind of key; reads need a token only when told to, and may carry it in the
/// query.
@Suite(.timeLimit(.minutes(2)))
struct AccessTests {
    static let realm = #"Bearer realm="resumable-stream""#
    static let demo = #"{"source":"demo","parameters":{"count":3,"intervalMs":0}}"#

    /// No source runs and no response is open; finished streams may still be in their replay grace.
    static func expectNothingRunning(_ server: TestServer, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await eventually(sourceLocation: sourceLocation) {
            let streams = server.context.activeStreams
            return server.routes.activeReaders == 0 && streams.producing == 0 && streams.following == 0
        }
    }

    /// One way a write's token can be wrong, and the answer it gets.
    struct Refusal: CustomStringConvertible, Sendable {
        let description: String
        let status: Int
        let error: String
        let authenticate: String
        /// The token (`nil`: none) and whether it goes in the query, for `action` on `id`.
        let token: @Sendable (_ action: StreamAction, _ id: String) async throws -> (token: String?, inQuery: Bool)

        static let missing = realm
        static let invalid = realm + #", error="invalid_token""#
        static let insufficient = realm + #", error="insufficient_scope""#

        static let all: [Refusal] = [
            Refusal(description: "no token", status: 401, error: "missing_token", authenticate: missing) { _, _ in (nil, false) },
            Refusal(description: "a token in the query", status: 401, error: "missing_token", authenticate: missing) { _, id in
                (try await TestTokens.hs256(TestTokens.claims(TestTokens.allActions, [id])), true)
            },
            Refusal(description: "an expired token", status: 401, error: "invalid_token", authenticate: invalid) { _, id in
                (try await TestTokens.hs256(TestTokens.claims(TestTokens.allActions, [id], expiresIn: -60)), false)
            },
            Refusal(description: "a token without exp", status: 401, error: "invalid_token", authenticate: invalid) { _, id in
                (try await TestTokens.hs256(StreamAccessClaims(exp: nil, streams: [.init(actions: TestTokens.allActions, ids: [StreamIdPattern(id)])])), false)
            },
            Refusal(description: "a token signed with another key", status: 401, error: "invalid_token", authenticate: invalid) { _, id in
                (try await TestTokens.hs256(TestTokens.claims(TestTokens.allActions, [id]), secret: TestTokens.otherSecret), false)
            },
            Refusal(description: "alg none", status: 401, error: "invalid_token", authenticate: invalid) { _, id in
                (try TestTokens.unsigned(TestTokens.claims(TestTokens.allActions, [id])), false)
            },
            Refusal(description: "another algorithm (HS384, the right secret)", status: 401, error: "invalid_token", authenticate: invalid) { _, id in
                (try await TestTokens.hs384(TestTokens.claims(TestTokens.allActions, [id])), false)
            },
            Refusal(description: "claims that do not decode", status: 401, error: "invalid_token", authenticate: invalid) { _, id in
                (try await TestTokens.hs256(TestTokens.OtherClaims(streams: [["actions": ["write"], "ids": [id]]])), false)
            },
            Refusal(description: "no JWT at all", status: 401, error: "invalid_token", authenticate: invalid) { _, _ in ("not-a-jwt", false) },
            Refusal(description: "a token for another id", status: 403, error: "forbidden", authenticate: insufficient) { _, id in
                (try await TestTokens.hs256(TestTokens.claims(TestTokens.allActions, [id + "-other", "x-*"])), false)
            },
            Refusal(description: "a token without the action", status: 403, error: "forbidden", authenticate: insufficient) { action, id in
                (try await TestTokens.hs256(TestTokens.claims(TestTokens.allActions.subtracting([action]), [id])), false)
            },
        ]
    }

    /// The request of a write, with its token where the refusal puts it.
    static func write(_ action: StreamAction, _ base: String, _ id: String, token: String?, inQuery: Bool = false, headers: [(String, String)] = []) async throws -> Answer {
        let query = inQuery ? "?access_token=\(token ?? "")" : ""
        let header = inQuery ? nil : token
        switch action {
        case .create: return try await Answer.send(.POST, "\(base)/streams/\(id)\(query)", token: header, body: demo, headers: headers)
        case .ingest: return try await Answer.send(.POST, "\(base)/streams/\(id)/ingest\(query)", token: header, body: "more text", headers: headers)
        case .cancel: return try await Answer.send(.DELETE, "\(base)/streams/\(id)\(query)", token: header, headers: headers)
        case .read: return try await Answer.send(.GET, "\(base)/streams/\(id)\(query)", token: header, headers: headers)
        }
    }

    /// Each refusal, for each write, against a live stream of that id: the refusal comes before
    /// the id is looked up (a `401` or `403`, not the `409` of a taken id), and the stream goes
    /// on untouched until the right token cancels it.
    @Test(arguments: [StreamAction.create, .ingest, .cancel])
    func eachWrongTokenIsRefusedBeforeAnythingHappens(action: StreamAction) async throws {
        try await withServers(1, redis: false, sources: Gate.sources, { $0.jwtSecret = TestTokens.secret }) { servers in
            let base = servers[0].base
            let id = "w-\(action.rawValue)"
            let owner = try await TestTokens.hs256(TestTokens.claims(TestTokens.allActions, [id]))
            let gate = Gate.make()
            let creator = try await Client.send(Client.request(.POST, "\(base)/streams/\(id)", body: gate.body, headers: Answer.bearer(owner)))
            #expect(creator.status == .ok)
            for refusal in Refusal.all {
                let (token, inQuery) = try await refusal.token(action, id)
                let answer = try await Self.write(action, base, id, token: token, inQuery: inQuery)
                #expect(answer.status == refusal.status, "\(refusal)")
                #expect(answer.error == refusal.error, "\(refusal)")
                #expect((answer.object["message"] as? String)?.isEmpty == false, "\(refusal)")
                #expect(answer.header("WWW-Authenticate") == refusal.authenticate, "\(refusal)")
            }
            let head = try await Answer.send(.HEAD, "\(base)/streams/\(id)")
            #expect(head.header("Stream-State") == "live")
            gate.send("still here")
            let cancelled = try await Self.write(.cancel, base, id, token: owner)
            #expect(cancelled.status == 202)
            let read = try await Client.read(creator)
            #expect(read.text == "still here")
            #expect(read.end?.status == "cancelled")
            try await expectNothingLeft(servers[0])
        }
    }

    enum KeyKind: String, CaseIterable, CustomStringConvertible, Sendable {
        case hs256, rs256, es256
        var description: String { rawValue }
    }

    /// The service's key, and a signer with it and one with another key of the same kind.
    struct Keys {
        let configure: @Sendable (inout ServerConfiguration) -> Void
        let sign: @Sendable (StreamAccessClaims) async throws -> String
        let signWithAnotherKey: @Sendable (StreamAccessClaims) async throws -> String
    }

    static func withKeys<Result>(_ kind: KeyKind, _ body: (Keys) async throws -> Result) async throws -> Result {
        switch kind {
        case .hs256:
            return try await body(Keys(
                configure: { $0.jwtSecret = TestTokens.secret },
                sign: { try await TestTokens.hs256($0) },
                signWithAnotherKey: { try await TestTokens.hs256($0, secret: TestTokens.otherSecret) }
            ))
        case .rs256:
            let publicKey = try Insecure.RSA.PrivateKey(pem: TestTokens.rsaPrivateKeyPEM).publicKey.pemRepresentation
            return try await TestTokens.withPEMFile(publicKey) { path in
                try await body(Keys(
                    configure: { $0.jwtPublicKeyFile = path },
                    sign: { try await TestTokens.rs256($0) },
                    // Another kind of key altogether: the HS256 secret.
                    signWithAnotherKey: { try await TestTokens.hs256($0) }
                ))
            }
        case .es256:
            let key = ES256PrivateKey()
            let other = ES256PrivateKey()
            return try await TestTokens.withPEMFile(key.publicKey.pemRepresentation) { path in
                try await body(Keys(
                    configure: { $0.jwtPublicKeyFile = path },
                    sign: { try await TestTokens.es256($0, key: key) },
                    signWithAnotherKey: { try await TestTokens.es256($0, key: other) }
                ))
            }
        }
    }

    /// With the right token, each write works, whichever the key's kind; reads stay public.
    @Test(arguments: KeyKind.allCases)
    func theRightTokenWorks(kind: KeyKind) async throws {
        try await Self.withKeys(kind) { keys in
            try await withServers(1, redis: false, sources: Gate.sources, keys.configure) { servers in
                let base = servers[0].base
                let token = try await keys.sign(TestTokens.claims(TestTokens.allActions, ["ok-*"]))
                // Create, and read it back without a token.
                let created = try await Client.send(Client.request(.POST, "\(base)/streams/ok-demo", body: Self.demo, headers: Answer.bearer(token)))
                #expect(created.status == .ok)
                #expect(try await Client.read(created).text == demoText(3))
                #expect(try await Client.read(try await Client.follow(base, "ok-demo")).text == demoText(3))
                #expect(try await Answer.send(.HEAD, "\(base)/streams/ok-demo").status == 200)
                #expect(try await Answer.send(.GET, "\(base)/streams/ok-demo/status").status == 200)
                // Ingest.
                let ingested = try await Self.write(.ingest, base, "ok-ingest", token: token)
                #expect(ingested.status == 201)
                #expect(ingested.object["length"] as? Int == "more text".utf16.count)
                // Cancel.
                let gate = Gate.make()
                let creator = try await Client.send(Client.request(.POST, "\(base)/streams/ok-gate", body: gate.body, headers: Answer.bearer(token)))
                #expect(try await Self.write(.cancel, base, "ok-gate", token: token).status == 202)
                #expect(try await Client.read(creator).end?.status == "cancelled")
                // The same claims signed with another key.
                let forged = try await keys.signWithAnotherKey(TestTokens.claims(TestTokens.allActions, ["ok-*"]))
                let refused = try await Self.write(.create, base, "ok-forged", token: forged)
                #expect(refused.status == 401)
                #expect(refused.error == "invalid_token")
                try await Self.expectNothingRunning(servers[0])
            }
        }
    }

    /// `Stream-Offset` continues an ingest: the same `ingest` action, checked before the stream
    /// is looked for.
    @Test func continuingAnIngestNeedsAnIngestToken() async throws {
        try await withServers(1, redis: false, { $0.jwtSecret = TestTokens.secret }) { servers in
            let base = servers[0].base
            let offset = [("Stream-Offset", "0")]
            var answer = try await Self.write(.ingest, base, "c-1", token: nil, headers: offset)
            #expect(answer.status == 401)
            #expect(answer.error == "missing_token")
            let createOnly = try await TestTokens.hs256(TestTokens.claims([.create], ["c-1"]))
            answer = try await Self.write(.ingest, base, "c-1", token: createOnly, headers: offset)
            #expect(answer.status == 403)
            // Let through, it gets what a continued ingest of an unknown stream gets.
            let ingest = try await TestTokens.hs256(TestTokens.claims([.ingest], ["c-1"]))
            answer = try await Self.write(.ingest, base, "c-1", token: ingest, headers: offset)
            #expect(![401, 403].contains(answer.status))
            #expect(answer.error != nil)
        }
    }

    /// A refused write is answered as soon as its head arrives: its body is never waited for.
    @Test func aRefusedWriteDoesNotWaitForItsBody() async throws {
        try await withServers(1, redis: false, { $0.jwtSecret = TestTokens.secret }) { servers in
            for head in [
                "POST /streams/b-1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                "POST /streams/b-2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
            ] {
                let connection = try await RawConnection.connect(port: servers[0].port)
                try await connection.write(head)
                let response = try await connection.readResponseHead()
                #expect(response.hasPrefix("HTTP/1.1 401"), "\(response)")
                #expect(response.lowercased().contains(#"www-authenticate: bearer realm="resumable-stream""#), "\(response)")
            }
            try await expectNothingLeft(servers[0])
        }
    }

    /// With `requireReadToken`, each read needs a token that allows `read` on its id, in the
    /// header or the `access_token` query parameter; writes still refuse the query.
    @Test func readsNeedATokenWhenRequiredInTheHeaderOrTheQuery() async throws {
        try await withServers(1, redis: false, { $0.jwtSecret = TestTokens.secret; $0.requireReadToken = true }) { servers in
            let base = servers[0].base
            let writer = try await TestTokens.hs256(TestTokens.claims([.create], ["r-*"]))
            let created = try await Client.send(Client.request(.POST, "\(base)/streams/r-1", body: Self.demo, headers: Answer.bearer(writer)))
            #expect(try await Client.read(created).text == demoText(3))

            let reader = try await TestTokens.hs256(TestTokens.claims([.read], ["r-1"]))
            let reads: [(HTTPMethod, String)] = [(.GET, "/streams/r-1"), (.HEAD, "/streams/r-1"), (.GET, "/streams/r-1/status")]
            for (method, path) in reads {
                let none = try await Answer.send(method, base + path)
                #expect(none.status == 401, "\(method) \(path)")
                #expect(none.header("WWW-Authenticate") == Self.realm, "\(method) \(path)")
                #expect(try await Answer.send(method, base + path, token: reader).status == 200, "\(method) \(path)")
                #expect(try await Answer.send(method, "\(base)\(path)?access_token=\(reader)").status == 200, "\(method) \(path)")
            }
            // The stream itself, with the token in the query beside the offset, as EventSource asks.
            let resumed = try await Client.read(try await Client.follow(base, "r-1", query: "?resumeAt=8&access_token=\(reader)"))
            #expect(resumed.text == String(demoText(3).dropFirst(8)))
            // An unknown stream is not told apart from a known one without a token.
            #expect(try await Answer.send(.GET, "\(base)/streams/r-unknown").status == 401)
            #expect(try await Answer.send(.GET, "\(base)/streams/r-unknown", token: reader).status == 403)

            let otherId = try await TestTokens.hs256(TestTokens.claims([.read], ["r-2"]))
            let expired = try await TestTokens.hs256(TestTokens.claims([.read], ["r-1"], expiresIn: -1))
            let unsigned = try TestTokens.unsigned(TestTokens.claims([.read], ["r-1"]))
            let refusals = [(writer, 403, "forbidden"), (otherId, 403, "forbidden"), (expired, 401, "invalid_token"), (unsigned, 401, "invalid_token")]
            for (token, status, error) in refusals {
                let answer = try await Answer.send(.GET, "\(base)/streams/r-1?access_token=\(token)")
                #expect(answer.status == status, "\(error)")
                #expect(answer.error == error, "\(error)")
            }
            // A write never takes its token from the query, however good.
            let everything = try await TestTokens.hs256(TestTokens.claims(TestTokens.allActions, ["*"]))
            for action in [StreamAction.create, .ingest, .cancel] {
                let answer = try await Self.write(action, base, "r-w", token: everything, inQuery: true)
                #expect(answer.status == 401, "\(action)")
                #expect(answer.error == "missing_token", "\(action)")
            }
            try await Self.expectNothingRunning(servers[0])
        }
    }

    /// Without a key, reads and writes are open, as before.
    @Test func withoutAKeyEveryoneMayWrite() async throws {
        try await withServers(1, redis: false) { servers in
            let base = servers[0].base
            let created = try await Client.create(base, "open", body: Self.demo)
            #expect(try await Client.read(created).text == demoText(3))
            #expect(try await Self.write(.ingest, base, "open-ingest", token: nil).status == 201)
            #expect(try await Answer.send(.GET, "\(base)/streams/open/status").status == 200)
        }
    }

    /// Settings the service cannot run with stop it at start, with the reason.
    @Test func aKeyOrSettingThatCannotWorkStopsTheStart() async throws {
        let cases: [(String, (inout ServerConfiguration) -> Void)] = [
            ("require-read-token without a key", { $0.requireReadToken = true }),
            ("two keys", { $0.jwtSecret = TestTokens.secret; $0.jwtPublicKeyFile = "/nonexistent.pem" }),
            ("a short secret", { $0.jwtSecret = "short" }),
            ("a key file that is not there", { $0.jwtPublicKeyFile = "/nonexistent/key.pem" }),
            ("a CORS origin with a path", { $0.corsAllowedOrigins = ["https://app.example.com/app"] }),
        ]
        for (name, configure) in cases {
            await #expect(throws: StreamAccessConfigurationError.self, "\(name)") {
                let server = try await TestServer.start(redis: false, prefix: "access-start", configure)
                await server.stop()
            }
        }
        try await TestTokens.withPEMFile(TestTokens.rsaPrivateKeyPEM) { path in
            let refusal = await #expect(throws: StreamAccessConfigurationError.self) {
                let server = try await TestServer.start(redis: false, prefix: "access-start") { $0.jwtPublicKeyFile = path }
                await server.stop()
            }
            #expect(refusal?.message.contains("private key") == true)
        }
    }
}

extension RawConnection {
    /// The status line and headers of the first response, without waiting for the connection
    /// to close; the connection is closed afterwards.
    func readResponseHead() async throws -> String {
        var text = ""
        try await channel.executeThenClose { inbound, _ in
            for try await piece in inbound {
                text += String(buffer: piece)
                if let end = text.range(of: "\r\n\r\n") {
                    text = String(text[..<end.lowerBound])
                    break
                }
            }
        }
        return text
    }
}
