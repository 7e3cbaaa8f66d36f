import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A Redis client on one pipelined connection that any number of tasks share.
///
/// Commands are sent as soon as they are called, without waiting for earlier replies, and each
/// caller gets its own reply. When the connection is lost, commands in flight fail with
/// ``RedisConnectionError/connectionClosed``, the client reconnects in the background with capped
/// exponential backoff, and commands called meanwhile wait for it (up to the command timeout).
///
/// Every call honours task cancellation: a call whose task is cancelled returns at once with
/// `CancellationError`, whether it waits for its reply or for a connection, and a task cancelled
/// before it calls sends nothing. A command already sent cannot be taken back; its reply is read and
/// dropped when it comes, and the calls after it still get their own replies.
public final class RedisClient: RedisClientProtocol {
    public var configuration: RedisConfiguration { connection.configuration }
    /// The event loop of the client's connection. Commands called on it wake no other thread, and
    /// those called in one turn of the loop go out in one write.
    public var eventLoop: any EventLoop { connection.eventLoop }
    /// Runs tasks on ``eventLoop``: a task that prefers it makes its calls without a thread hop,
    /// for the lowest latency (see ``EventLoopTaskExecutor``).
    public let taskExecutor: EventLoopTaskExecutor
    private let connection: ReconnectingConnection
    private let counters: PipelineCounters
    private let outboxes = NIOLockedValueBox<CommandOutbox?>(nil)

    private init(connection: ReconnectingConnection, counters: PipelineCounters) {
        self.connection = connection
        self.counters = counters
        self.taskExecutor = EventLoopTaskExecutor(eventLoop: connection.eventLoop)
    }

    /// Connects, authenticates and selects the database; throws if any of it fails.
    ///
    /// Call ``close()`` when done: the connection stays open (and reconnects) until then.
    public static func connect(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "redis", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> RedisClient {
        try await connecting(configuration: configuration, eventLoop: eventLoopGroup.any(), logger: logger).get()
    }

    /// ``connect(configuration:eventLoopGroup:logger:)`` as a future, which several callers can
    /// wait for (a cluster client's first commands to a node share one connection attempt).
    static func connecting(configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger) -> EventLoopFuture<RedisClient> {
        let counters = PipelineCounters()
        let connection = ReconnectingConnection(configuration: configuration, eventLoop: eventLoop, logger: logger, counters: counters)
        return connection.start().map { RedisClient(connection: connection, counters: counters) }
    }

    /// How the pipeline has been used since the client connected (over every reconnection): mean
    /// batch size and how many commands are in flight when a batch goes out.
    public var pipelineStatistics: RedisPipelineStatistics {
        counters.statistics
    }

    /// Closes the connection. Commands in flight fail with ``RedisConnectionError/connectionClosed``,
    /// later ones with ``RedisConnectionError/closed``.
    public func close() async {
        try? await connection.close().get()
    }

    /// Sends any command and returns its reply.
    ///
    /// - Throws: ``RedisServerError`` when Redis answers with an error; ``RedisConnectionError``
    ///   when the connection fails or the reply does not come in time; `CancellationError` when the
    ///   calling task is cancelled.
    nonisolated(nonsending) public func send(_ arguments: [RedisArgument]) async throws -> RedisReply {
        try await send(arguments, asking: false)
    }

    /// Sends the command, preceded by `ASKING` when `asking` (a cluster node's `ASK` redirection):
    /// both go out together, so that no other caller's command comes between them.
    nonisolated(nonsending) func send(_ arguments: [RedisArgument], asking: Bool) async throws -> RedisReply {
        try Task.checkCancellation()
        let deadline = NIODeadline.now() + connection.configuration.commandTimeout
        var outbox = try await outbox(deadline: deadline)
        let reply: RedisReply
        do {
            reply = try await send(arguments, asking: asking, through: outbox, deadline: deadline)
        } catch is CommandNotSent {
            // The connection was closing under us. Once its close is complete the reconnection has
            // begun (it watches the same close), and the command can wait for the new connection.
            try? await outbox.channel.closeFuture.get()
            try Task.checkCancellation()
            outbox = try await self.outbox(deadline: deadline)
            do {
                reply = try await send(arguments, asking: asking, through: outbox, deadline: deadline)
            } catch is CommandNotSent {
                throw RedisConnectionError.connectionClosed
            }
        }
        if case .error(let message) = reply {
            throw RedisServerError(message: message)
        }
        return reply
    }

    nonisolated(nonsending) private func send(_ arguments: [RedisArgument], asking: Bool, through outbox: CommandOutbox, deadline: NIODeadline) async throws -> RedisReply {
        // The handler's record lives on the task's own allocator; the command's number is all the
        // cancellation needs to find it (see CommandOutbox).
        let id = outbox.makeCommandID()
        return try await withTaskCancellationHandler {
            try await withReplyContinuation { continuation in
                outbox.send(arguments, asking: asking, reply: PendingReply(sink: .continuation(continuation), id: id, deadline: deadline))
            }
        } onCancel: {
            outbox.cancel(id: id)
        }
    }

    /// The outbox of the open connection, waiting for a reconnection until `deadline` if needed.
    nonisolated(nonsending) private func outbox(deadline: NIODeadline) async throws -> CommandOutbox {
        let channel: any Channel
        if let current = connection.currentChannel {
            channel = current
        } else {
            channel = try await connection.channel(deadline: deadline)
        }
        return outboxes.withLockedValue { outbox in
            if let outbox, outbox.channel === channel { return outbox }
            let fresh = CommandOutbox(channel: channel)
            outbox = fresh
            return fresh
        }
    }
}
