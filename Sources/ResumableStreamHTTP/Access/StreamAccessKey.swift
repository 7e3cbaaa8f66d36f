import JWTKit

/// The one key that tokens are verified with, and so the one algorithm they may use: `HS256` with
/// a shared secret, or `RS256` or `ES256` with a public key, told apart by the PEM it comes in.
public struct StreamAccessKey: Sendable {
    enum Kind: Sendable {
        case hmac(HMACKey)
        case rsa(Insecure.RSA.PublicKey)
        case ecdsa(ES256PublicKey)
    }

    let kind: Kind

    init(kind: Kind) {
        self.kind = kind
    }

    /// The `alg` a token's header must name: `HS256`, `RS256` or `ES256`.
    public var algorithm: String {
        switch kind {
        case .hmac: return "HS256"
        case .rsa: return "RS256"
        case .ecdsa: return "ES256"
        }
    }

    /// HS256 with a shared secret of at least 32 bytes (RFC 7518 asks for a key as long as the
    /// hash): a shorter one can be guessed offline from any token signed with it.
    public static func secret(_ secret: String) throws(StreamAccessConfigurationError) -> StreamAccessKey {
        guard secret.utf8.count >= 32 else {
            throw StreamAccessConfigurationError("the JWT secret has \(secret.utf8.count) bytes; HS256 needs at least 32 (for one: openssl rand -base64 32)")
        }
        return StreamAccessKey(kind: .hmac(HMACKey(from: secret)))
    }

    /// RS256 for an RSA public key (2048 bits or more; `BEGIN PUBLIC KEY` or
    /// `BEGIN RSA PUBLIC KEY`), ES256 for a P-256 EC public key (`BEGIN PUBLIC KEY`).
    public init(publicKeyPEM pem: String) throws(StreamAccessConfigurationError) {
        guard !pem.contains("PRIVATE KEY") else {
            throw StreamAccessConfigurationError("the PEM holds a private key: give the public key alone (openssl pkey -in private.pem -pubout)")
        }
        guard pem.contains("-----BEGIN PUBLIC KEY-----") || pem.contains("-----BEGIN RSA PUBLIC KEY-----") else {
            throw StreamAccessConfigurationError("the file holds no PEM public key (-----BEGIN PUBLIC KEY-----)")
        }
        if let key = try? ES256PublicKey(pem: pem) {
            kind = .ecdsa(key)
            return
        }
        do {
            kind = .rsa(try Insecure.RSA.PublicKey(pem: pem))
        } catch {
            throw StreamAccessConfigurationError("the PEM is neither an RSA public key of 2048 bits or more (RS256) nor a P-256 EC public key (ES256): \(error)")
        }
    }

    /// A collection that holds this key alone: a token of any other algorithm, `none` included,
    /// does not verify.
    func keyCollection() async -> JWTKeyCollection {
        let keys = JWTKeyCollection()
        switch kind {
        case .hmac(let key): await keys.add(hmac: key, digestAlgorithm: .sha256)
        case .rsa(let key): await keys.add(rsa: key, digestAlgorithm: .sha256)
        case .ecdsa(let key): await keys.add(ecdsa: key)
        }
        return keys
    }
}

/// A key or an access setting the service cannot start with; the message says why.
public struct StreamAccessConfigurationError: Error, CustomStringConvertible, Equatable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
