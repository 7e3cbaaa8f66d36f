import Logging
import NIOCore
import NIOPosix

/// A Redis client on one pipelined connection that any number of tasks share.
///
/// Commands are sent as soon as they are called, without waiting for earlier replies, and each
/// caller gets its own reply. When the connection is lost, commands in flight fail with
/// ``RedisConnectionError/connectionClosed``, the client reconnects in the background with capped
/// exponential backoff, and commands called meanwhile wait for it (up to the command timeout).
public final class RedisClient: Sendable {
    public var configuration: RedisConfiguration { connection.configuration }
    private let connection: ReconnectingConnection

    private init(connection: ReconnectingConnection) {
        self.connection = connection
    }

    /// Connects, authenticates and selects the database; throws if any of it fails.
    ///
    /// Call ``close()`` when done: the connection stays open (and reconnects) until then.
    public static func connect(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "redis", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> RedisClient {
        let connection = ReconnectingConnection(
            configuration: configuration,
            eventLoop: eventLoopGroup.any(),
            logger: logger
        )
        try await connection.start().get()
        return RedisClient(connection: connection)
    }

    /// Closes the connection. Commands in flight fail with ``RedisConnectionError/connectionClosed``,
    /// later ones with ``RedisConnectionError/closed``.
    public func close() async {
        try? await connection.close().get()
    }

    /// Sends any command and returns its reply.
    ///
    /// - Throws: ``RedisServerError`` when Redis answers with an error; ``RedisConnectionError``
    ///   when the connection fails or the reply does not come in time.
    public func send(_ arguments: [RedisArgument]) async throws -> RedisReply {
        let deadline = NIODeadline.now() + connection.configuration.commandTimeout
        let channel: any Channel
        if let current = connection.currentChannel {
            channel = current
        } else {
            channel = try await connection.channel(deadline: deadline).get()
        }
        let reply: RedisReply
        do {
            reply = try await RedisConnector.send(arguments, on: channel, deadline: deadline).get()
        } catch is CommandNotSent {
            // The connection was closing under us. Once its close is complete the reconnection has
            // begun (it watches the same close), and the command can wait for the new connection.
            try? await channel.closeFuture.get()
            let next = try await connection.channel(deadline: deadline).get()
            do {
                reply = try await RedisConnector.send(arguments, on: next, deadline: deadline).get()
            } catch is CommandNotSent {
                throw RedisConnectionError.connectionClosed
            }
        }
        if case .error(let message) = reply {
            throw RedisServerError(message: message)
        }
        return reply
    }

    /// Sends any command and returns its reply.
    public func send(_ arguments: RedisArgument...) async throws -> RedisReply {
        try await send(arguments)
    }
}
