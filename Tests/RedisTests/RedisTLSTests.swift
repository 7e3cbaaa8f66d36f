import NIOCore
import Redis
import TestSupport
import Testing

/// The client and the subscriber over TLS, against a redis-server that speaks only TLS, with a
/// throwaway CA made by `openssl` for the run.
@Suite("Redis over TLS", .serialized, .timeLimit(.minutes(2)))
struct RedisTLSTests {
    static func configuration(_ server: PrivateRedisServer, _ tls: RedisTLS, host: String = "localhost") throws -> RedisConfiguration {
        var configuration = RedisConfiguration(host: host, port: server.port)
        configuration.tls = tls
        configuration.connectTimeout = .seconds(3)
        return configuration
    }

    @Test func commandsAndPubSubGoOverTLS() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let server = try await PrivateRedisServer.startTLS(certificates)
        defer { server.stop() }
        // By name (checked, and sent as SNI) and by address (checked against the certificate's).
        for host in ["localhost", "127.0.0.1"] {
            let configuration = try Self.configuration(server, RedisTLS(caFile: certificates.caFile), host: host)
            let client = try await RedisClient.connect(configuration: configuration)
            let subscriber = try await RedisSubscriber.connect(configuration: configuration)
            try await client.set("tls-key", to: "é🌍", expireInSeconds: 60)
            #expect(try await client.getString("tls-key") == "é🌍")
            let messages = try await subscriber.subscribe(to: "tls-channel")
            #expect(try await client.publish("over TLS", to: "tls-channel") == 1)
            var iterator = messages.makeAsyncIterator()
            #expect(try await iterator.next() == .message(ByteBuffer(string: "over TLS")))
            messages.unsubscribe()
            await subscriber.close()
            await client.close()
        }
        // The URL says TLS; the CA comes beside it.
        var fromURL = try RedisConfiguration(url: server.url)
        #expect(fromURL.tls == RedisTLS())
        fromURL.tls?.caFile = certificates.caFile
        let client = try await RedisClient.connect(configuration: fromURL)
        #expect(try await client.ping() == "PONG")
        await client.close()
    }

    /// A certificate that does not verify fails the connection, with the reason, whether the CA is
    /// another, the system's trust store does not know it, or the name is not the certificate's;
    /// a plain connection to a TLS port does not pass for one.
    @Test func aCertificateThatDoesNotVerifyFailsToConnectAndSaysWhy() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let server = try await PrivateRedisServer.startTLS(certificates)
        defer { server.stop() }
        let misnamed = try await PrivateRedisServer.startTLS(certificates, misnamed: true)
        defer { misnamed.stop() }
        let refusals: [(String, RedisConfiguration)] = [
            ("another CA", try Self.configuration(server, RedisTLS(caFile: certificates.otherCAFile))),
            ("the system's trust store", try Self.configuration(server, RedisTLS())),
            ("a name the certificate does not have", try Self.configuration(misnamed, RedisTLS(caFile: certificates.caFile))),
        ]
        for (what, configuration) in refusals {
            let started = ContinuousClock.now
            let error = await #expect(throws: RedisConnectionError.self, "\(what)") {
                _ = try await RedisClient.connect(configuration: configuration)
            }
            guard case .connectFailed(let reason)? = error else {
                Issue.record("\(what): expected connectFailed, got \(String(describing: error))")
                continue
            }
            #expect(reason.contains("TLS"), "\(what): \(reason)")
            #expect(reason.contains("CERTIFICATE_VERIFY_FAILED") || reason.contains("failedToValidateHostname"), "\(what): \(reason)")
            #expect(ContinuousClock.now - started < .seconds(3), "\(what)")
            await #expect(throws: RedisConnectionError.self, "\(what): the subscriber") {
                _ = try await RedisSubscriber.connect(configuration: configuration)
            }
        }
        // No fallback the other way either: plain text to a TLS port gets no answer.
        var plain = try Self.configuration(server, RedisTLS(caFile: certificates.caFile))
        plain.tls = nil
        plain.commandTimeout = .seconds(2)
        do {
            let client = try await RedisClient.connect(configuration: plain)
            await #expect(throws: RedisConnectionError.self) { _ = try await client.ping() }
            await client.close()
        } catch is RedisConnectionError {
            // Refused while connecting: as good.
        }
    }

    @Test func mutualTLSNeedsTheClientsCertificate() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let server = try await PrivateRedisServer.startTLS(certificates, requireClientCertificate: true)
        defer { server.stop() }
        let withCertificate = RedisTLS(caFile: certificates.caFile, certificateFile: certificates.clientCertificateFile, keyFile: certificates.clientKeyFile)
        let client = try await RedisClient.connect(configuration: Self.configuration(server, withCertificate))
        #expect(try await client.ping() == "PONG")
        await client.close()

        let error = await #expect(throws: RedisConnectionError.self) {
            _ = try await RedisClient.connect(configuration: Self.configuration(server, RedisTLS(caFile: certificates.caFile)))
        }
        #expect(error.map { "\($0)" }?.contains("CERTIFICATE_REQUIRED") == true || error.map { "\($0)" }?.contains("certificate") == true, "\(String(describing: error))")

        // A certificate without its key is refused before any connection.
        let halfPair = RedisTLS(caFile: certificates.caFile, certificateFile: certificates.clientCertificateFile)
        let unusable = await #expect(throws: RedisConnectionError.self) {
            _ = try await RedisClient.connect(configuration: Self.configuration(server, halfPair))
        }
        #expect("\(String(describing: unusable))".contains("needs its key"))
    }
}
