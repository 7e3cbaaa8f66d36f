import NIOCore
import NIOPosix
@testable import Redis
import NIOConcurrencyHelpers
import TestSupport
import Testing

@Suite("Redis connection failures", .timeLimit(.minutes(2)))
struct RedisConnectionFailureTests {
    @Test func wrongPasswordFailsWithRedisReasonWithinTheTimeout() async throws {
        var configuration = try TestRedis.configuration()
        configuration.password = "not-the-password"
        configuration.connectTimeout = .seconds(3)
        let started = ContinuousClock.now
        let error = await #expect(throws: RedisConnectionError.self) {
            _ = try await RedisClient.connect(configuration: configuration)
        }
        guard case .handshakeFailed(let reason) = error else {
            Issue.record("expected a handshake failure, got \(String(describing: error))")
            return
        }
        #expect(reason.hasPrefix("WRONGPASS"))
        #expect(ContinuousClock.now - started < .seconds(3))

        await #expect(throws: RedisConnectionError.self) {
            _ = try await RedisSubscriber.connect(configuration: configuration)
        }
    }

    @Test func refusedPortFailsClearly() async throws {
        // A port that was free a moment ago: bind, note it, release it.
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        try await listener.close()

        var configuration = try TestRedis.configuration()
        configuration.port = port
        let error = await #expect(throws: RedisConnectionError.self) {
            _ = try await RedisClient.connect(configuration: configuration)
        }
        guard case .connectFailed(let reason) = error else {
            Issue.record("expected a connect failure, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("127.0.0.1:\(port)"))
    }

    /// A connection that closed as it opened (the server was going away) before the handshake's
    /// AUTH could be written fails the connect with a connection error, not the client's internal
    /// "not sent" marker.
    @Test func aHandshakeOnAConnectionAlreadyClosedFailsWithAConnectionError() async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: try #require(listener.localAddress?.port)).get()
        try await channel.close()
        var configuration = RedisConfiguration()
        configuration.password = "secret"
        let handshake = RedisConnector.handshake(channel: channel, configuration: configuration, deadline: .now() + .seconds(1))
        await #expect(throws: RedisConnectionError.connectionClosed) { try await handshake.get() }
    }

    @Test func silentServerTimesOutAndTheConnectionIsClosed() async throws {
        // Accepts connections and never answers, like a stuck or wrong server.
        let accepted = NIOLockedValueBox(0)
        let closed = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 += 1 }
                channel.closeFuture.cascade(to: closed)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }

        var configuration = try TestRedis.configuration()
        configuration.port = try #require(listener.localAddress?.port)
        configuration.connectTimeout = .milliseconds(300)
        let error = await #expect(throws: RedisConnectionError.self) {
            _ = try await RedisClient.connect(configuration: configuration)
        }
        #expect(error == .connectTimeout(.milliseconds(300)))
        // The half-open connection is closed, not left behind, and nothing retries in the background.
        try await closed.futureResult.get()
        #expect(accepted.withLockedValue { $0 } == 1)
    }

    @Test func malformedURLsAreRefusedWithAReason() throws {
        for url in ["http://localhost", "redis://", "redis://host:99999", "redis://host/x", "rediss:host"] {
            let error = #expect(throws: RedisConfigurationError.self) { try RedisConfiguration(url: url) }
            #expect(error?.message.isEmpty == false)
        }
    }

    @Test func killedCommandConnectionFailsInFlightCallsAndRecovers() async throws {
        let name = "killed-\(TestRedis.unique("cmd").suffix(12))"
        try await TestRedis.withClient { admin throws in
            try await TestRedis.withClient(name: name) { client throws in
                // Traffic from many tasks on the one connection.
                let stop = NIOLockedValueBox(false)
                let succeeded = Tally()
                let cutInFlight = Tally()
                defer { stop.withLockedValue { $0 = true } }
                let traffic = Task {
                    try await withThrowingTaskGroup(of: [String].self) { group in
                        for task in 0..<20 {
                            group.addTask {
                                var unexpected: [String] = []
                                let key = TestRedis.unique("traffic-\(task)")
                                while !stop.withLockedValue({ $0 }) {
                                    do {
                                        _ = try await client.incr(key)
                                        succeeded.add()
                                    } catch RedisConnectionError.connectionClosed {
                                        cutInFlight.add()
                                    } catch {
                                        unexpected.append("\(error)")
                                        break
                                    }
                                }
                                _ = try? await client.del(key)
                                return unexpected
                            }
                        }
                        return try await group.reduce(into: []) { $0 += $1 }
                    }
                }

                await succeeded.wait(until: 1_001)

                // Then a call that is certainly in flight when the connection dies: BLPOP blocks in
                // Redis, and the traffic's calls pipelined behind it wait in flight with it.
                let blocked = Task { try await client.send("BLPOP", .string(TestRedis.unique("never")), 30) }
                try await eventually {
                    let list = try await admin.send("CLIENT", "LIST").string ?? ""
                    return list.split(separator: "\n").contains { $0.contains(" name=\(name) ") && $0.contains(" flags=b ") }
                }
                #expect(try await TestRedis.kill(clientNamed: name, using: admin) == 1)
                let error = await #expect(throws: RedisConnectionError.self) { try await blocked.value }
                #expect(error == .connectionClosed)
                await cutInFlight.wait(until: 1)

                // Later calls succeed on a new connection, which carries the name again.
                #expect(try await client.ping() == "PONG")
                await succeeded.wait(until: succeeded.value + 1_001)
                stop.withLockedValue { $0 = true }
                #expect(try await traffic.value == [])
                #expect(try await TestRedis.connections(named: name, using: admin) == 1)
            }
        }
    }
}
