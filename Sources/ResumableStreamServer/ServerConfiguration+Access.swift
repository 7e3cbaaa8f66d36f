import Foundation
import ResumableStreamHTTP

extension ServerConfiguration {
    /// Whether writes need a token: they do once a key is configured.
    public var writesNeedToken: Bool { jwtSecret != nil || jwtPublicKeyFile != nil }

    /// The access control the routes ask, from the configured key; `nil` without one (writes are
    /// open). A key that cannot be used, or a setting that needs a key without one, stops the
    /// instance at start with the reason.
    func streamAccess() async throws(StreamAccessConfigurationError) -> JWTStreamAccess? {
        let key: StreamAccessKey
        switch (jwtSecret, jwtPublicKeyFile) {
        case (nil, nil):
            guard !requireReadToken else {
                throw StreamAccessConfigurationError("--require-read-token needs a key to check tokens with: --jwt-secret or --jwt-public-key-file")
            }
            return nil
        case (let secret?, nil):
            key = try StreamAccessKey.secret(secret)
        case (nil, let path?):
            let pem: String
            do {
                pem = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw StreamAccessConfigurationError("cannot read the JWT public key file \(path): \(error.localizedDescription)")
            }
            do {
                key = try StreamAccessKey(publicKeyPEM: pem)
            } catch {
                throw StreamAccessConfigurationError("\(path): \(error.message)")
            }
        case (_?, _?):
            throw StreamAccessConfigurationError("--jwt-secret and --jwt-public-key-file are two keys: give one")
        }
        return await JWTStreamAccess(key: key, requireReadToken: requireReadToken)
    }

    /// The CORS policy of the configured origins; `nil` without any.
    func crossOriginPolicy() throws(StreamAccessConfigurationError) -> CrossOriginPolicy? {
        corsAllowedOrigins.isEmpty ? nil : try CrossOriginPolicy(allowedOrigins: corsAllowedOrigins)
    }
}

extension StreamServer {
    /// The algorithm write tokens are checked with (`HS256`, `RS256`, `ES256`); `nil` when writes
    /// are open.
    public var tokenAlgorithm: String? {
        (routes.configuration.access as? JWTStreamAccess)?.key.algorithm
    }
}
