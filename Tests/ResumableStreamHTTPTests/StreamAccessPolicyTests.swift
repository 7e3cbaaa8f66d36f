import Foundation
import HTTPTypes
import JWTKit
import Testing

@testable import ResumableStreamHTTP

/// The access policy as pure logic: id patterns, grants, claims, where a token comes from, keys
/// and CORS origins. No socket, no server.
@Suite("Access policy")
struct StreamAccessPolicyTests {
    /// As jwt-kit decodes claims: dates in seconds since 1970.
    static let decoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }()

    @Test func anExactPatternMatchesItsIdAlone() {
        let pattern = StreamIdPattern("log-7")
        #expect(pattern.matches("log-7"))
        for other in ["log-70", "log-", "log", "Log-7", ""] {
            #expect(!pattern.matches(other), "\(other)")
        }
    }

    @Test func aPatternEndingInAStarMatchesItsPrefix() {
        let pattern = StreamIdPattern("chat-42-*")
        for id in ["chat-42-", "chat-42-a", "chat-42-a/b", "chat-42-*"] {
            #expect(pattern.matches(id), "\(id)")
        }
        for id in ["chat-42", "chat-4", "chat-421", "xchat-42-a"] {
            #expect(!pattern.matches(id), "\(id)")
        }
    }

    @Test func aStarAloneMatchesAnyIdAndAStarInsideIsPartOfTheId() {
        for id in ["a", "chat-42-x", "é", ""] {
            #expect(StreamIdPattern("*").matches(id), "\(id)")
        }
        #expect(StreamIdPattern("a*b").matches("a*b"))
        #expect(!StreamIdPattern("a*b").matches("axb"))
    }

    /// Redis names streams by bytes: two spellings of one character are two streams.
    @Test func idsAreComparedByteForByte() {
        let composed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        #expect(composed == decomposed)
        #expect(!StreamIdPattern(composed).matches(decomposed))
        #expect(!StreamIdPattern("cafe\u{301}*").matches(composed + "-1"))
        #expect(StreamIdPattern("caf*").matches(decomposed))
    }

    @Test func aGrantAllowsItsActionsOnItsIdsAndATokenWhatAnyGrantAllows() {
        let claims = StreamAccessClaims(exp: nil, streams: [
            .init(actions: [.create, .ingest], ids: [StreamIdPattern("chat-42-*"), StreamIdPattern("log-7")]),
            .init(actions: [.read], ids: [StreamIdPattern("*")]),
        ])
        #expect(claims.allows(.create, on: "chat-42-1"))
        #expect(claims.allows(.ingest, on: "log-7"))
        #expect(claims.allows(.read, on: "anything"))
        #expect(!claims.allows(.cancel, on: "chat-42-1"))
        #expect(!claims.allows(.create, on: "log-8"))
        #expect(!StreamAccessClaims(exp: nil, streams: []).allows(.read, on: "a"))
    }

    @Test func onlyReadingIsNotAWrite() {
        #expect(StreamAction.allCases.filter(\.isWrite) == [.create, .ingest, .cancel])
    }

    /// The example of docs/access.md decodes to what it says.
    @Test func theDocumentedClaimsDecode() throws {
        let json = #"{"exp": 1764590000, "sub": "user-42", "streams": [{"actions": ["create", "ingest", "cancel", "read"], "ids": ["chat-42-*", "log-7"]}]}"#
        let claims = try Self.decoder.decode(StreamAccessClaims.self, from: Data(json.utf8))
        #expect(claims.exp?.value == Date(timeIntervalSince1970: 1_764_590_000))
        #expect(claims.sub?.value == "user-42")
        #expect(claims.streams == [.init(actions: Set(StreamAction.allCases), ids: [StreamIdPattern("chat-42-*"), StreamIdPattern("log-7")])])
    }

    @Test func anUnknownActionOrAMalformedGrantDoesNotDecode() {
        for json in [
            #"{"exp": 1, "streams": [{"actions": ["write"], "ids": ["a"]}]}"#,
            #"{"exp": 1, "streams": [{"actions": ["read"]}]}"#,
            #"{"exp": 1, "streams": [{"actions": "read", "ids": ["a"]}]}"#,
            #"{"exp": "tomorrow", "streams": []}"#,
            #"{"exp": 1, "streams": {"actions": ["read"], "ids": ["a"]}}"#,
        ] {
            #expect(throws: DecodingError.self, "\(json)") {
                try Self.decoder.decode(StreamAccessClaims.self, from: Data(json.utf8))
            }
        }
    }

    @Test func aTokenWithoutStreamsAllowsNothing() throws {
        let claims = try Self.decoder.decode(StreamAccessClaims.self, from: Data(#"{"exp": 1}"#.utf8))
        #expect(claims.streams.isEmpty)
    }

    @Test func expIsRequiredAndChecked() throws {
        let now = Date(timeIntervalSince1970: 1_000_000)
        #expect(throws: StreamTokenError.noExpiry) { try StreamAccessClaims(exp: nil, streams: []).check(at: now) }
        let expiry = ExpirationClaim(value: now)
        #expect(throws: StreamTokenError.expired(now)) { try StreamAccessClaims(exp: expiry, streams: []).check(at: now) }
        try StreamAccessClaims(exp: expiry, streams: []).check(at: now.addingTimeInterval(-1))
    }

    // MARK: - Where the token comes from

    @Test func theTokenComesFromTheBearerHeader() throws {
        #expect(try BearerToken.find(authorization: "Bearer abc.def.ghi", query: nil, queryAllowed: false) == "abc.def.ghi")
        #expect(try BearerToken.find(authorization: "bearer  abc ", query: nil, queryAllowed: false) == "abc")
        // The header wins over the query.
        #expect(try BearerToken.find(authorization: "Bearer header", query: "query", queryAllowed: true) == "header")
    }

    @Test func theQueryParameterIsTakenForReadsOnly() throws {
        #expect(try BearerToken.find(authorization: nil, query: "abc", queryAllowed: true) == "abc")
        let refusal = #expect(throws: APIError.self) {
            try BearerToken.find(authorization: nil, query: "abc", queryAllowed: false)
        }
        #expect(refusal?.code == "missing_token")
        #expect(refusal?.message.contains("reads only") == true)
    }

    @Test(arguments: [
        ("Basic dXNlcjpwdw==", nil), ("Bearer", nil), ("Bearer   ", nil), ("", nil), (nil, ""), (nil, nil),
    ] as [(String?, String?)])
    func aRequestWithoutABearerTokenIsMissingOne(authorization: String?, query: String?) {
        let refusal = #expect(throws: APIError.self) {
            try BearerToken.find(authorization: authorization, query: query, queryAllowed: true)
        }
        #expect(refusal?.status == .unauthorized)
        #expect(refusal?.code == "missing_token")
        #expect(refusal?.headers[.wwwAuthenticate] == #"Bearer realm="resumable-stream""#)
    }

    @Test func eachRefusalSaysWhyInWWWAuthenticate() {
        let invalid = APIError.invalidToken("expired")
        #expect(invalid.status == .unauthorized)
        #expect(invalid.code == "invalid_token")
        #expect(invalid.headers[.wwwAuthenticate] == #"Bearer realm="resumable-stream", error="invalid_token""#)
        let forbidden = APIError.forbidden(.cancel, "log-7")
        #expect(forbidden.status == .forbidden)
        #expect(forbidden.code == "forbidden")
        #expect(forbidden.headers[.wwwAuthenticate] == #"Bearer realm="resumable-stream", error="insufficient_scope""#)
    }

    // MARK: - Keys

    @Test func aSecretShorterThan32BytesIsRefused() throws {
        #expect(throws: StreamAccessConfigurationError.self) { try StreamAccessKey.secret(String(repeating: "x", count: 31)) }
        #expect(try StreamAccessKey.secret(String(repeating: "x", count: 32)).algorithm == "HS256")
    }

    @Test func theAlgorithmIsToldFromThePEM() throws {
        let rsa = try Insecure.RSA.PrivateKey(pem: TestTokens.rsaPrivateKeyPEM).publicKey.pemRepresentation
        #expect(try StreamAccessKey(publicKeyPEM: rsa).algorithm == "RS256")
        #expect(try StreamAccessKey(publicKeyPEM: TestTokens.rsaPublicKeyPKCS1PEM).algorithm == "RS256")
        #expect(try StreamAccessKey(publicKeyPEM: ES256PrivateKey().publicKey.pemRepresentation).algorithm == "ES256")
    }

    @Test func aPEMThatIsNoUsablePublicKeyIsRefused() throws {
        let refused = [
            TestTokens.rsaPrivateKeyPEM,
            ES256PrivateKey().pemRepresentation,
            // Another curve: ES384 is not what this service takes.
            ES384PrivateKey().publicKey.pemRepresentation,
            "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
            "not a PEM",
        ]
        for pem in refused {
            #expect(throws: StreamAccessConfigurationError.self, "\(pem.prefix(40))") { try StreamAccessKey(publicKeyPEM: pem) }
        }
    }

    // MARK: - CORS origins

    @Test func allowedOriginsAreEchoedAndOthersRefused() throws {
        let policy = try CrossOriginPolicy(allowedOrigins: ["https://App.example.com/", " http://localhost:3000 "])
        #expect(policy.allowedOrigins == ["https://app.example.com", "http://localhost:3000"])
        #expect(policy.allowOrigin(for: "https://app.example.com") == "https://app.example.com")
        #expect(policy.allowOrigin(for: "http://localhost:3000") == "http://localhost:3000")
        for refused in ["https://app.example.com:444", "http://app.example.com", "https://evil.example.com", "null", ""] {
            #expect(policy.allowOrigin(for: refused) == nil, "\(refused)")
        }
    }

    @Test func aStarAllowsEveryOriginAsAStar() throws {
        let policy = try CrossOriginPolicy(allowedOrigins: ["*"])
        #expect(policy.allowOrigin(for: "https://anyone.example") == "*")
        #expect(policy.allowOrigin(for: "null") == "*")
    }

    @Test(arguments: ["app.example.com", "https://app.example.com/path", "https://", "ftp://x", "https://user@app.example.com", ""])
    func whatIsNoOriginIsRefusedAtStart(origin: String) {
        #expect(throws: StreamAccessConfigurationError.self) { try CrossOriginPolicy(allowedOrigins: [origin]) }
    }

    /// A token verified once is taken again without verification until it expires; then it is
    /// refused and forgotten. The cache is bounded.
    @Test func aVerifiedTokenIsRememberedUntilItExpires() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let claims = StreamAccessClaims(exp: ExpirationClaim(value: now + 60), streams: [])
        let tokens = VerifiedTokens(capacity: 2)
        #expect(try tokens.claims(of: "a", at: now) == nil)
        tokens.remember(claims, of: "a")
        #expect(try tokens.claims(of: "a", at: now + 59) == claims)
        #expect(throws: StreamTokenError.expired(now + 60)) { try tokens.claims(of: "a", at: now + 60) }
        #expect(try tokens.claims(of: "a", at: now) == nil)

        tokens.remember(claims, of: "a")
        tokens.remember(claims, of: "b")
        tokens.remember(claims, of: "c")
        #expect(tokens.count <= 2)
        #expect(try tokens.claims(of: "c", at: now) == claims)
    }
}
