import Foundation
import Redis

/// Certificates made for one test run with `openssl`: a CA, a server certificate for `localhost`
/// and 127.0.0.1 that it signed, a client certificate it signed, and a second CA that signed
/// nothing of these (a wrong trust root).
public struct TestCertificates: Sendable {
    public let directory: URL
    public var caFile: String { path("ca.crt") }
    public var serverCertificateFile: String { path("server.crt") }
    public var serverKeyFile: String { path("server.key") }
    public var clientCertificateFile: String { path("client.crt") }
    public var clientKeyFile: String { path("client.key") }
    public var otherCAFile: String { path("other-ca.crt") }
    /// A certificate the CA signed for another name only.
    public var misnamedCertificateFile: String { path("misnamed.crt") }
    public var misnamedKeyFile: String { path("misnamed.key") }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    public static func make() throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-tls-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try certificates.openssl(["req", "-x509"] + key + ["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=resumable-stream test CA"])
        try certificates.openssl(["req", "-x509"] + key + ["-keyout", "other-ca.key", "-out", "other-ca.crt", "-days", "2", "-subj", "/CN=another CA"])
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n".write(toFile: certificates.path("server.ext"), atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(toFile: certificates.path("client.ext"), atomically: true, encoding: .utf8)
        try "subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth\n".write(toFile: certificates.path("misnamed.ext"), atomically: true, encoding: .utf8)
        for (name, subject) in [("server", "/CN=localhost"), ("client", "/CN=resumable-stream test client"), ("misnamed", "/CN=elsewhere.example")] {
            try certificates.openssl(["req"] + key + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", subject])
            try certificates.openssl([
                "x509", "-req", "-in", "\(name).csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "\(name).crt", "-days", "2", "-extfile", "\(name).ext",
            ])
        }
        return certificates
    }

    private func openssl(_ arguments: [String]) throws {
        // env -C: openssl runs in the certificates' directory, where the arguments name files.
        let process = try ChildProcess.spawn(
            name: "openssl", executable: "/usr/bin/env", arguments: ["-C", directory.path, "openssl"] + arguments, logPath: "/dev/null"
        )
        let ended = process.waitForExit()
        guard ended == .exited(0) else {
            throw OpenSSLFailed(arguments: arguments, ended: ended)
        }
    }

    public func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    struct OpenSSLFailed: Error, CustomStringConvertible {
        let arguments: [String]
        let ended: ChildProcess.Termination
        var description: String { "openssl \(arguments.joined(separator: " ")) \(ended)" }
    }
}

extension PrivateRedisServer {
    /// A redis-server that speaks TLS only, with `certificates`' server certificate; with
    /// `requireClientCertificate`, clients must show one that the test CA signed.
    /// `misnamed`: the server shows the certificate made for another name.
    public static func startTLS(_ certificates: TestCertificates, requireClientCertificate: Bool = false, misnamed: Bool = false) async throws -> PrivateRedisServer {
        var trusted = RedisTLS(caFile: certificates.caFile)
        if requireClientCertificate {
            trusted.certificateFile = certificates.clientCertificateFile
            trusted.keyFile = certificates.clientKeyFile
        }
        for _ in 0..<20 {
            let port = Int.random(in: 20_000..<60_000)
            let arguments = [
                "--port", "0", "--tls-port", "\(port)",
                "--tls-cert-file", misnamed ? certificates.misnamedCertificateFile : certificates.serverCertificateFile,
                "--tls-key-file", misnamed ? certificates.misnamedKeyFile : certificates.serverKeyFile,
                "--tls-ca-cert-file", certificates.caFile,
                "--tls-auth-clients", requireClientCertificate ? "yes" : "no",
            ]
            var ready = RedisConfiguration(host: "localhost", port: port)
            ready.tls = trusted
            // A misnamed server is up once it gets as far as showing its certificate.
            let isReady: () async -> Bool = misnamed
                ? {
                    do {
                        _ = try await RedisClient.connect(configuration: ready)
                        return false
                    } catch RedisConnectionError.connectFailed(let reason) {
                        return reason.contains("TLS")
                    } catch {
                        return false
                    }
                }
                : { await answers(ready) }
            if let process = try await launch(arguments: arguments, ready: isReady) {
                return PrivateRedisServer(url: "rediss://localhost:\(port)", port: port, process: process)
            }
        }
        throw StartFailed()
    }
}
