import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// One connection in subscribe mode that carries any number of channels for any number of consumers.
///
/// Consumers of the same channel share one Redis subscription. When the connection is lost, the
/// subscriber reconnects with capped exponential backoff, subscribes every channel that still has
/// consumers again, and then tells each of them that a gap happened
/// (``RedisSubscriptionEvent/gap(_:)`` with ``RedisSubscriptionGap/reconnected``).
///
/// A connection whose Redis stopped answering counts as lost: the subscriber sends `PING` every
/// ``RedisConfiguration/healthCheckInterval`` and closes the connection when the answer takes longer
/// than ``RedisConfiguration/commandTimeout``.
public final class RedisSubscriber: Sendable {
    public var configuration: RedisConfiguration { connection.configuration }
    private let connection: ReconnectingConnection
    private let core: NIOLoopBound<SubscriberCore>
    private let nextID = NIOLockedValueBox(0)
    private let bufferSize: Int
    private let losses: LossCounter

    private init(connection: ReconnectingConnection, core: NIOLoopBound<SubscriberCore>, bufferSize: Int, losses: LossCounter) {
        self.connection = connection
        self.core = core
        self.bufferSize = bufferSize
        self.losses = losses
    }

    /// How many times the connection was lost since the subscriber connected: cut, closed by Redis,
    /// or closed by the health check because Redis stopped answering.
    public var connectionsLost: Int {
        losses.count.load(ordering: .relaxed)
    }

    /// Connects, authenticates, and puts the connection in subscribe mode.
    ///
    /// - Parameters:
    ///   - bufferSize: how many messages each consumer may have waiting before new ones are
    ///     dropped for it (and a gap reported).
    ///   - sharded: subscribe shard channels (`SSUBSCRIBE`, Redis 7) instead of channels: a cluster
    ///     node delivers what `SPUBLISH` sends to the slots it serves (see ``RedisClusterSubscriber``).
    public static func connect(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        bufferSize: Int = 1024,
        sharded: Bool = false,
        logger: Logger = Logger(label: "redis", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> RedisSubscriber {
        try await connecting(configuration: configuration, eventLoop: eventLoopGroup.any(), bufferSize: bufferSize, sharded: sharded, logger: logger).get()
    }

    /// ``connect(configuration:eventLoopGroup:bufferSize:sharded:logger:)`` as a future, which
    /// several callers can wait for (a cluster's first subscriptions on a node share one connection).
    static func connecting(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        bufferSize: Int,
        sharded: Bool,
        logger: Logger
    ) -> EventLoopFuture<RedisSubscriber> {
        precondition(bufferSize > 0, "a subscription buffer holds at least one message")
        let healthCheck = SubscriberHealthCheck(
            interval: configuration.healthCheckInterval,
            timeout: configuration.commandTimeout
        )
        return eventLoop.submit {
            NIOLoopBound(
                SubscriberCore(eventLoop: eventLoop, logger: logger, healthCheck: healthCheck, sharded: sharded),
                eventLoop: eventLoop
            )
        }.flatMap { core in
            connecting(configuration: configuration, core: core, bufferSize: bufferSize, logger: logger)
        }
    }

    private static func connecting(
        configuration: RedisConfiguration,
        core: NIOLoopBound<SubscriberCore>,
        bufferSize: Int,
        logger: Logger
    ) -> EventLoopFuture<RedisSubscriber> {
        let eventLoop = core.eventLoop
        let losses = LossCounter()
        let connection = ReconnectingConnection(
            configuration: configuration,
            eventLoop: eventLoop,
            logger: logger,
            prepare: { channel in
                channel.pipeline.removeHandler(name: RedisConnector.commandHandlerName).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(
                        RedisSubscriberHandler(onPush: { core.value.handle($0) })
                    )
                }
            },
            onConnect: { core.value.connected($0) },
            onDisconnect: {
                losses.count.add(1, ordering: .relaxed)
                core.value.disconnected()
            }
        )
        return connection.start().map { RedisSubscriber(connection: connection, core: core, bufferSize: bufferSize, losses: losses) }
    }

    /// Subscribes to `channel`, returning once Redis has confirmed the subscription.
    ///
    /// Call ``RedisSubscription/unsubscribe()`` (or cancel the task iterating it) when done, or use
    /// ``withSubscription(to:_:)``, which does so for you.
    ///
    /// - Throws: ``RedisServerError`` when Redis refuses the channel; ``RedisConnectionError`` when
    ///   no confirmation comes within the command timeout or the subscriber is closed;
    ///   `CancellationError` as soon as the calling task is cancelled (a task cancelled before it
    ///   calls subscribes nothing).
    public func subscribe(to channel: String) async throws -> RedisSubscription {
        try Task.checkCancellation()
        let id = nextID.withLockedValue { id in
            id += 1
            return id
        }
        let (stream, continuation) = AsyncThrowingStream.makeStream(
            of: RedisSubscriptionEvent.self,
            bufferingPolicy: .bufferingOldest(bufferSize)
        )
        let eventLoop = connection.eventLoop
        let confirmation = eventLoop.makePromise(of: Void.self)
        let core = self.core
        let timeout = connection.configuration.commandTimeout
        continuation.onTermination = { _ in
            eventLoop.execute { core.value.remove(id: id, from: channel) }
        }
        eventLoop.execute {
            let consumer = SubscriptionConsumer(id: id, continuation: continuation, confirmation: confirmation)
            core.value.add(consumer, to: channel, timeout: timeout)
        }
        do {
            // The cancellation runs after the `add` above on the event loop (queued later), so it
            // always finds the consumer there, or finds it gone because it was already answered.
            try await withTaskCancellationHandler {
                try await confirmation.futureResult.get()
            } onCancel: {
                eventLoop.execute { core.value.cancelSubscribe(id: id, from: channel) }
            }
        } catch {
            continuation.finish()
            throw error
        }
        return RedisSubscription(channel: channel, stream: stream, continuation: continuation)
    }

    /// Subscribes to `channel`, runs `body` with the subscription, and unsubscribes when it returns.
    public func withSubscription<Result: Sendable>(
        to channel: String,
        _ body: (RedisSubscription) async throws -> Result
    ) async throws -> Result {
        let subscription = try await subscribe(to: channel)
        defer { subscription.unsubscribe() }
        return try await body(subscription)
    }

    /// The channels this subscriber holds, with how many local consumers each one has.
    public func channels() async -> [String: Int] {
        let core = self.core
        return (try? await connection.eventLoop.submit { core.value.table.consumerCounts }.get()) ?? [:]
    }

    /// Closes the connection; every subscription ends with ``RedisConnectionError/closed``.
    public func close() async {
        let core = self.core
        try? await connection.eventLoop.submit { core.value.close() }.get()
        try? await connection.close().get()
    }
}

/// Counts lost connections for ``RedisSubscriber/connectionsLost``: written on the event loop, read anywhere.
private final class LossCounter: Sendable {
    let count = Atomic<Int>(0)
}

/// The subscriber's state and logic, confined to its event loop.
final class SubscriberCore {
    private(set) var table = SubscriptionTable<SubscriptionConsumer>()
    private var channel: (any Channel)?
    private var isClosed = false
    private let logger: Logger
    private var healthCheck: SubscriberHealthCheck
    private var healthTimer: Scheduled<Void>?
    private let eventLoop: any EventLoop
    private let sharded: Bool

    init(eventLoop: any EventLoop, logger: Logger, healthCheck: SubscriberHealthCheck, sharded: Bool) {
        self.eventLoop = eventLoop
        self.logger = logger
        self.healthCheck = healthCheck
        self.sharded = sharded
    }

    func connected(_ channel: any Channel) {
        self.channel = channel
        for command in table.connectionEstablished() {
            write(command)
        }
        channel.flush()
        carryOut(healthCheck.connected(now: .now()))
    }

    func disconnected() {
        channel = nil
        stopHealthCheck()
        guard sharded else {
            table.connectionLost()
            return
        }
        // A shard channel is subscribed again where its slot lives by then, which after a lost
        // connection may be another node (a replica took over): its reader resubscribes through
        // ``RedisClusterSubscriber``, with the map read again, rather than here.
        let consumers = table.allConsumers
        table = SubscriptionTable()
        for consumer in consumers {
            consumer.fail(RedisConnectionError.connectionClosed)
        }
    }

    func add(_ consumer: SubscriptionConsumer, to channelName: String, timeout: TimeAmount) {
        guard !isClosed else {
            consumer.fail(RedisConnectionError.closed)
            return
        }
        switch table.add(consumer, id: consumer.id, to: channelName) {
        case .confirmed:
            consumer.confirm()
            return
        case .send(let command):
            write(command)
            channel?.flush()
        case .wait:
            break
        }
        // Also while reconnecting: a subscribe call waits for the next connection no longer than a
        // command does.
        consumer.timeout = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            guard self.table.isConfirmed(id: consumer.id, on: channelName) == false else { return }
            self.remove(id: consumer.id, from: channelName)
            consumer.fail(RedisConnectionError.commandTimeout(timeout))
        }
    }

    /// The task waiting in `subscribe` was cancelled: the consumer leaves (unless it was answered
    /// already) and its call ends with `CancellationError`.
    func cancelSubscribe(id: Int, from channelName: String) {
        guard let consumer = table.consumer(id: id, on: channelName), table.isConfirmed(id: id, on: channelName) == false else {
            return
        }
        remove(id: id, from: channelName)
        consumer.fail(CancellationError())
    }

    func remove(id: Int, from channelName: String) {
        if let command = table.remove(id: id, from: channelName) {
            write(command)
            channel?.flush()
        }
    }

    func handle(_ push: PubSubPush) {
        switch push {
        case .message(let channelName, let payload):
            for consumer in table.consumers(of: channelName) {
                consumer.deliver(.message(payload))
            }
        case .subscribed(let channelName):
            carryOut(table.subscribeConfirmed(channelName))
        case .unsubscribed(let channelName):
            if sharded, let consumers = table.droppedByServer(channelName) {
                for consumer in consumers {
                    consumer.fail(RedisShardChannelMoved(channel: channelName))
                }
                return
            }
            carryOut(table.unsubscribeConfirmed(channelName))
        case .pong:
            guard table.pongReceived() else {
                protocolViolation("a PING answer nobody asked for")
                return
            }
            carryOut(healthCheck.pongReceived(now: .now()))
        case .error(let message):
            switch table.commandFailed() {
            case .fail(let consumers):
                logger.warning("Redis refused a subscription", metadata: ["error": "\(message)"])
                for consumer in consumers {
                    consumer.fail(RedisServerError(message: message))
                }
            case .send(let command):
                write(command)
                channel?.flush()
            case .pingRefused:
                logger.debug("Redis refused the health check's PING", metadata: ["error": "\(message)"])
                carryOut(healthCheck.pongReceived(now: .now()))
            case .none:
                break
            case .protocolViolation(let reason):
                protocolViolation(reason)
            }
        }
    }

    func close() {
        isClosed = true
        stopHealthCheck()
        for consumer in table.allConsumers {
            consumer.fail(RedisConnectionError.closed)
        }
    }

    private func carryOut(_ action: SubscriptionTable<SubscriptionConsumer>.ConfirmationAction) {
        switch action {
        case .subscribed(let confirm, let gap):
            for consumer in confirm {
                consumer.confirm()
            }
            for consumer in gap {
                consumer.deliver(.gap(.reconnected))
            }
        case .send(let command):
            write(command)
            channel?.flush()
        case .none:
            break
        case .protocolViolation(let reason):
            protocolViolation(reason)
        }
    }

    private func carryOut(_ action: SubscriberHealthCheck.Action) {
        switch action {
        case .none:
            break
        case .arm(let deadline):
            armHealthTimer(deadline)
        case .sendPing(let deadline):
            write(table.pingSent())
            channel?.flush()
            armHealthTimer(deadline)
        case .closeConnection:
            logger.warning(
                "Redis did not answer the subscriber's PING in time; reconnecting",
                metadata: ["timeout": "\(healthCheck.timeout)"]
            )
            channel?.close(promise: nil)
        }
    }

    private func armHealthTimer(_ deadline: NIODeadline) {
        healthTimer?.cancel()
        healthTimer = channel?.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.healthTimer = nil
            self.carryOut(self.healthCheck.timerFired(now: .now()))
        }
    }

    private func stopHealthCheck() {
        healthTimer?.cancel()
        healthTimer = nil
        healthCheck.disconnected()
    }

    private func protocolViolation(_ reason: String) {
        logger.error("the subscriber is out of step with Redis; reconnecting", metadata: ["reason": "\(reason)"])
        channel?.close(promise: nil)
    }

    private func write(_ command: SubscriptionTable<SubscriptionConsumer>.Command) {
        guard let channel else { return }
        let arguments: [RedisArgument]
        switch command {
        case .subscribe(let name): arguments = [sharded ? "SSUBSCRIBE" : "SUBSCRIBE", .string(name)]
        case .unsubscribe(let name): arguments = [sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", .string(name)]
        case .ping: arguments = ["PING"]
        }
        channel.write(HiredisCommandEncoder.encode(arguments, allocator: channel.allocator), promise: nil)
    }
}

@available(*, unavailable)
extension SubscriberCore: Sendable {}
