import Logging
import NIOCore
import NIOPosix

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
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(RedisReplyDecoder())
                    try pipeline.addHandler(
                        RedisCommandHandler(commandTimeout: configuration.commandTimeout, counters: counters),
                        name: Self.commandHandlerName
                    )
                }
            }
        return bootstrap.connect(host: configuration.host, port: configuration.port)
            .flatMapErrorThrowing { error in
                throw Self.connectError(error, configuration: configuration)
            }
            .flatMap { channel in
                Self.handshake(channel: channel, configuration: configuration, deadline: deadline)
                    .map { channel }
                    .flatMapError { error in
                        channel.close(promise: nil)
                        return channel.eventLoop.makeFailedFuture(error)
                    }
            }
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

    private static func handshake(
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
