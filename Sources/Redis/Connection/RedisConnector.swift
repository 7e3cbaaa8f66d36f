import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// Opens one connection to Redis and sets it up: AUTH, SELECT and CLIENT SETNAME, pipelined.
///
/// The returned channel's pipeline ends in a ``RedisCommandHandler``; the subscriber swaps that for
/// its own handler afterwards.
enum RedisConnector {
    static let commandHandlerName = "redis-commands"

    static func connect(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        counters: PipelineCounters? = nil
    ) -> EventLoopFuture<any Channel> {
        let deadline = NIODeadline.now() + configuration.connectTimeout
        let tls: NIOSSLContext?
        do {
            tls = try configuration.tls?.makeContext()
        } catch {
            return eventLoop.makeFailedFuture(RedisConnectionError.connectFailed("\(configuration.host):\(configuration.port): \(error)"))
        }
        let tlsHandshake = tls.map { _ in eventLoop.makePromise(of: Void.self) }
        let tlsError = NIOLockedValueBox<(any Error)?>(nil)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls, let tlsHandshake {
                        // The certificate is checked against the host: its name (also sent as SNI),
                        // or, for an address, the certificate's IP addresses.
                        let name = Self.isAddress(configuration.host) ? nil : configuration.host
                        try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: name))
                        try pipeline.addHandler(TLSHandshakeWaiter(done: tlsHandshake, laterError: tlsError))
                    }
                    try pipeline.addHandler(RedisReplyDecoder())
                    try pipeline.addHandler(
                        RedisCommandHandler(commandTimeout: configuration.commandTimeout, counters: counters),
                        name: Self.commandHandlerName
                    )
                }
            }
        return bootstrap.connect(host: configuration.host, port: configuration.port)
            .flatMapErrorThrowing { error in
                tlsHandshake?.fail(error)
                throw Self.connectError(error, configuration: configuration)
            }
            .flatMap { channel in
                // Over TLS, the handshake first: a certificate that does not verify is the reason
                // the connection fails, not a closed connection at its first command.
                let secured = tlsHandshake.map { handshake in
                    handshake.futureResult.flatMapErrorThrowing { error in
                        throw RedisConnectionError.connectFailed("\(configuration.host):\(configuration.port): TLS: \(error)")
                    }
                } ?? channel.eventLoop.makeSucceededVoidFuture()
                return secured.flatMap {
                    Self.handshake(channel: channel, configuration: configuration, deadline: deadline)
                        .flatMapErrorThrowing { error in
                            // A bare close after a TLS error is that error.
                            guard let tlsFailure = tlsError.withLockedValue({ $0 }) else { throw error }
                            throw RedisConnectionError.connectFailed("\(configuration.host):\(configuration.port): TLS: \(tlsFailure)")
                        }
                }
                .map { channel }
                .flatMapError { error in
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
    }

    private static func isAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }

    /// Sends one command on a connection set up by ``connect(configuration:eventLoop:logger:)``,
    /// outside any batch: for the connection's setup.
    static func send(
        _ arguments: [RedisArgument],
        on channel: any Channel,
        deadline: NIODeadline
    ) -> EventLoopFuture<RedisReply> {
        let promise = channel.eventLoop.makePromise(of: RedisReply.self)
        let bytes = HiredisCommandEncoder.encode(arguments, allocator: channel.allocator)
        RedisBatch(bytes: bytes, replies: [PendingReply(sink: .promise(promise), deadline: deadline)]).write(to: channel)
        return promise.futureResult
    }

    static func handshake(
        channel: any Channel,
        configuration: RedisConfiguration,
        deadline: NIODeadline
    ) -> EventLoopFuture<Void> {
        var commands: [[RedisArgument]] = []
        if let password = configuration.password {
            if let username = configuration.username {
                commands.append(["AUTH", .string(username), .string(password)])
            } else {
                commands.append(["AUTH", .string(password)])
            }
        }
        if configuration.database != 0 {
            commands.append(["SELECT", .integer(configuration.database)])
        }
        if let name = configuration.clientName {
            commands.append(["CLIENT", "SETNAME", .string(name)])
        }
        if configuration.tls != nil, commands.isEmpty {
            // With TLS 1.3 a server that wants a client certificate refuses after the handshake,
            // at the first read: ask something, so that the refusal comes now.
            commands.append(["PING"])
        }
        let replies = commands.map { send($0, on: channel, deadline: deadline) }
        return EventLoopFuture.whenAllComplete(replies, on: channel.eventLoop).flatMapThrowing { results in
            for result in results {
                switch result {
                case .success(.error(let message)):
                    throw RedisConnectionError.handshakeFailed(message)
                case .success:
                    continue
                case .failure(RedisConnectionError.commandTimeout):
                    throw RedisConnectionError.connectTimeout(configuration.connectTimeout)
                case .failure(is CommandNotSent):
                    // The server closed the connection as it opened (it was going away): the
                    // caller sees a connection that closed, not this client's internal error.
                    throw RedisConnectionError.connectionClosed
                case .failure(let error):
                    throw error
                }
            }
        }
    }

    private static func connectError(_ error: any Error, configuration: RedisConfiguration) -> RedisConnectionError {
        if case ChannelError.connectTimeout = error {
            return .connectTimeout(configuration.connectTimeout)
        }
        return .connectFailed("\(configuration.host):\(configuration.port): \(error)")
    }
}
