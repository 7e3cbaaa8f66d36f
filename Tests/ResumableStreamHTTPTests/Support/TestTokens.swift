import Foundation
import JWTKit
import ResumableStreamHTTP

/// Keys and tokens for the access tests, made with jwt-kit as an issuer would make them.
enum TestTokens {
    /// 48 bytes or more: HS384 (another algorithm, the same secret) asserts a key that long.
    static let secret = "a-test-secret-long-enough-for-hs256-and-for-hs384-as-well"
    static let otherSecret = "another-test-secret-of-32-bytes-or-more"

    /// A 2048-bit RSA key made for these tests alone (openssl genpkey), whose public half the
    /// RS256 server gets; it signs nothing anywhere else.
    static let rsaPrivateKeyPEM = """
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDieVX0kk4D9iWD
xczdUquSlL1T1BgOiohJ2ZwN9SDY3KQMdUO5jNdjTmfwJsnMssUuRL7Rb8YYbKIX
X8UbJmiIW+Bdm91n4q2RFLqo7MJrj4jbs2zU2rGc8XICkuLdl59oua2uKMGl7D9v
JTbZeshinDdRKjFmRR1qXea9CkiWeNj8oYqxl5wD1LfE67Owu+jl2QARysAUagOV
mym9BJCoLCZH5RpheMYhE9HOESV/6kt4zjB7dHsuHH63QmHOBdoHQUb7aV5p3Gbo
4p+Zv2YLWKNt6T2k7IklFjUEdWITjEC5wBOIlYCojBp0U3SG42V0Lyy8gbHHa73R
5n5Le56bAgMBAAECggEAGZ8X3gh4nQge7GPXWSlTfHd+soTUh+ic90XlhXVjAZsh
+sAq06DJyVQDJu8sdg+6MRGD86vNNybVxlvbr8ZOSIb5wNKztLS3ZX95Mp0+eEQP
0VM2OnUsvOWv5qH5hTpJxY5OxjJEM4z2YZD4k0LJzXuA4popu+Pmf7R0jenOQSo1
ASQWEzNb916UNJMgvqGOunCitEfLvzCYjMPHU2d074QCFP+4NUEhzgMMn2yAJcMl
wLIkoIWEsQnNOniAQxUnmCKFuKsvKY/npcIIT1AiXfLd9/nwzMIxjkOrGNKzfsU8
w4ydUgJ77/75HeYP3Inbfkv+mAptVUlbt0Zp37JYCQKBgQD5Sq242nRResBOzkDF
xWyskDPrcrd7P+D+X+Ni3UiQOrl58zYTm6RMMd1awnEEge8ADZVIXlO6kD/NsfBf
coXQ6PEq+tcbot1b0LdW5vCsgx89bKHF4eAqmYF//EMDEVi7IjMtKnN1gz6NxLyq
5UIo+jm+xGNgqRbbvhFbiKpp7QKBgQDokXhgKkzVcDZjcgAtxO1iG6MhaTqy1gUE
s9YWzKACz5bTeTWYypg2Pl3ohYzUx8ZA9lxvoph20r3TdWI2QWTxSMcqeWj7qLOd
tfLi6Qv3BeuHoP76lhfs3Tsv9Oz+c+v5NaycwY55UY8dIZrY3zPUDDlrHRu/uHxH
dqhtw035pwKBgDa7u7qrVACTt+dVh4kkmICmxI98R2arFsYi3XTWatkn25M33/ac
JI2KITSNHm1D7eqQEOertixvAWMzHziFl3XPvyuVmWb68ij3gVl2KP9nZpOA51/g
AOy5eWJVS40/4MBteNkAygrR/wj3WgkXftgqYEVPLxaI6XjjmUIElo3dAoGBAMvj
VIQCMY/hK11tgSie/3nGPvK4nURRit6/ho5AYHt2YIUPO2SzIFRVwuBpzLhyV6V2
Fj2sbzukr9SlkS99jzBVHH5pKBeQo7881y4FH381ynICO+eWFG2M2inF8Mt290Zo
vuZCblR/oxbn8if1LivVd7UnNL+UziecqDZqRX77AoGBAOmX0xtPKYoWXjdUF5gx
uLELPD7ACdNle9FLJz2GcZgx8ojecLE6jcEI93lECgY0ZTZ9QxJYq4RU4ydGDdKY
Fxazh7MagX4Z679rOb+QxwXOcDkLJflgao3zRw2uWhArcChx9s5Nuo6xmn3HmCzg
a2/zOG/TZlUAkkLRy9PqZMeG
-----END PRIVATE KEY-----
"""

    /// The same key's public half in PKCS#1 form (`BEGIN RSA PUBLIC KEY`).
    static let rsaPublicKeyPKCS1PEM = """
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEA4nlV9JJOA/Ylg8XM3VKrkpS9U9QYDoqISdmcDfUg2NykDHVDuYzX
Y05n8CbJzLLFLkS+0W/GGGyiF1/FGyZoiFvgXZvdZ+KtkRS6qOzCa4+I27Ns1Nqx
nPFyApLi3ZefaLmtrijBpew/byU22XrIYpw3USoxZkUdal3mvQpIlnjY/KGKsZec
A9S3xOuzsLvo5dkAEcrAFGoDlZspvQSQqCwmR+UaYXjGIRPRzhElf+pLeM4we3R7
Lhx+t0JhzgXaB0FG+2leadxm6OKfmb9mC1ijbek9pOyJJRY1BHViE4xAucATiJWA
qIwadFN0huNldC8svIGxx2u90eZ+S3uemwIDAQAB
-----END RSA PUBLIC KEY-----
"""

    /// Claims that allow `actions` on `ids`, expiring in five minutes (or `expiresIn`).
    static func claims(_ actions: Set<StreamAction>, _ ids: [String], expiresIn: TimeInterval = 300) -> StreamAccessClaims {
        StreamAccessClaims(
            exp: ExpirationClaim(value: Date().addingTimeInterval(expiresIn)),
            sub: "test-user",
            streams: [.init(actions: actions, ids: ids.map(StreamIdPattern.init))]
        )
    }

    static let allActions = Set(StreamAction.allCases)

    static func hs256(_ claims: some JWTPayload, secret: String = secret) async throws -> String {
        try await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256).sign(claims)
    }

    static func rs256(_ claims: StreamAccessClaims) async throws -> String {
        try await JWTKeyCollection().add(rsa: try Insecure.RSA.PrivateKey(pem: rsaPrivateKeyPEM), digestAlgorithm: .sha256).sign(claims)
    }

    static func es256(_ claims: StreamAccessClaims, key: ES256PrivateKey) async throws -> String {
        try await JWTKeyCollection().add(ecdsa: key).sign(claims)
    }

    /// Signed with HS384 and the right secret: the right key, another algorithm.
    static func hs384(_ claims: StreamAccessClaims) async throws -> String {
        try await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha384).sign(claims)
    }

    /// An unsigned token, built by hand: header `{"alg":"none","typ":"JWT"}`, the claims, and an
    /// empty signature.
    static func unsigned(_ claims: StreamAccessClaims) throws -> String {
        let header = base64URL(Data(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        let payload = base64URL(try encoder.encode(claims))
        return "\(header).\(payload)."
    }

    /// Claims of any shape, for tokens whose claims are not ours.
    struct OtherClaims: JWTPayload {
        var exp = ExpirationClaim(value: Date().addingTimeInterval(300))
        var streams: [[String: [String]]]

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A PEM file in a fresh temporary directory, removed after `body`.
    static func withPEMFile<Result>(_ pem: String, _ body: (String) async throws -> Result) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jwt-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("key.pem").path
        try pem.write(toFile: path, atomically: true, encoding: .utf8)
        return try await body(path)
    }
}
