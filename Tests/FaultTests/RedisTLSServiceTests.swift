import TestSupport
import Testing

extension FaultTests {
    /// Two instances on a redis-server that speaks only TLS and wants a client certificate: a
    /// stream created on one is followed on the other, in memory and in durable mode. An instance
    /// given the wrong CA, or no client certificate, does not start: it exits before it listens,
    /// and says why.
    @Test func theServiceOverTLSAndAnInstanceWhoseRedisCertificateDoesNotVerify() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let redis = try await PrivateRedisServer.startTLS(certificates, requireClientCertificate: true)
        defer { redis.stop() }
        let clientCertificate = ["--redis-tls-cert-file", certificates.clientCertificateFile, "--redis-tls-key-file", certificates.clientKeyFile]
        let trusted = ["--redis-tls-ca-file", certificates.caFile] + clientCertificate
        try await FaultHarness.run { h in
            for durability in ["memory", "redis"] {
                var options = ServerOptions()
                options.durability = durability
                let a = try await h.startServer("A (\(durability))", redis: nil, redisURL: redis.url, options: options, extraArguments: trusted)
                let b = try await h.startServer("B (\(durability))", redis: nil, redisURL: redis.url, options: options, extraArguments: trusted)
                let demo = Demo(count: 20, intervalMs: 20)
                let id = "over-tls-\(durability)"
                let creator = Observed(StreamRead())
                let creatorResponse = try await h.openStream(.POST, "\(a.base)/streams/\(id)", body: demo.body, "the creator on A")
                async let creatorRead: Void = EventStreamReader.read(creatorResponse, into: creator, timeout: .seconds(30))
                let follower = try await h.follow("\(b.base)/streams/\(id)", "the follower on B")
                let followed = try h.require(await follower.wait(timeout: .seconds(30)) { $0.finished }, "the follower on B did not end: \(follower.value)")
                await creatorRead
                h.checkComplete(creator.value, demo, "the creator on A (\(durability))")
                h.checkComplete(followed, demo, "the follower on B (\(durability))")
                a.process.killAndReap()
                b.process.killAndReap()
            }

            let refusals = [
                ("another CA", ["--redis-tls-ca-file", certificates.otherCAFile] + clientCertificate, "CERTIFICATE_VERIFY_FAILED"),
                ("the system's trust store", clientCertificate, "CERTIFICATE_VERIFY_FAILED"),
                ("no client certificate", ["--redis-tls-ca-file", certificates.caFile], "CERTIFICATE_REQUIRED"),
            ]
            for (what, arguments, reason) in refusals {
                do {
                    let server = try await h.startServer("C (\(what))", redis: nil, redisURL: redis.url, extraArguments: arguments)
                    h.fail("an instance with \(what) started and listens on \(server.port)")
                } catch let error as ServerProcess.StartFailed {
                    h.check(error.message.contains("before it listened") && error.message.contains("TLS") && error.message.contains(reason),
                            "an instance with \(what): expected it to exit before it listens, naming TLS and \(reason); got \(error.message)")
                }
            }
        }
    }
}
