import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One connection in subscribe mode that carries any number of channels for any number of consumers.
///
/// Consumers of the same channel share one Redis subscription. When the connection is lost, the
/// subscriber reconnects with capped exponential backoff, subscribes every channel that still has
/// consumers again, and then tells each of them that a gap happened
/// (``RedisSubscriptionEvent/gap(_:)`` with ``RedisSubscriptionGap/reconnected``).
public final class RedisSubscriber: Sendable {
    public var configuration: RedisConfiguration { connection.configuration }
    private let connection: ReconnectingConnection
    private let core: NIOLoopBound<SubscriberCore>
    private let nextID = NIOLockedValueBox(0)
    private let bufferSize: Int

    private init(connection: ReconnectingConnection, core: NIOLoopBound<SubscriberCore>, bufferSize: Int) {
        self.connection = connection
        self.core = core
        self.bufferSize = bufferSize
    }

    /// Connects, authenticates, and puts the connection in subscribe mode.
    ///
    /// - Parameter bufferSize: how many messages each consumer may have waiting before new ones are
    ///   dropped for it (and a gap reported).
    public static func connect(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        bufferSize: Int = 1024,
        logger: Logger = Logger(label: "redis", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> RedisSubscriber {
        precondition(bufferSize > 0, "a subscription buffer holds at least one message")
        let eventLoop = eventLoopGroup.any()
        let core = try await eventLoop.submit {
            NIOLoopBound(SubscriberCore(logger: logger), eventLoop: eventLoop)
        }.get()
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
            onDisconnect: { core.value.disconnected() }
        )
        try await connection.start().get()
        return RedisSubscriber(connection: connection, core: core, bufferSize: bufferSize)
    }

    /// Subscribes to `channel`, returning once Redis has confirmed the subscription.
    ///
    /// Call ``RedisSubscription/unsubscribe()`` (or cancel the task iterating it) when done, or use
    /// ``withSubscription(to:_:)``, which does so for you.
    public func subscribe(to channel: String) async throws -> RedisSubscription {
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
            try await confirmation.futureResult.get()
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

/// The subscriber's state and logic, confined to its event loop.
final class SubscriberCore {
    private(set) var table = SubscriptionTable<SubscriptionConsumer>()
    private var channel: (any Channel)?
    private var isClosed = false
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func connected(_ channel: any Channel) {
        self.channel = channel
        for command in table.connectionEstablished() {
            write(command)
        }
        channel.flush()
    }

    func disconnected() {
        channel = nil
        table.connectionLost()
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
        consumer.timeout = channel?.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            guard self.table.isConfirmed(id: consumer.id, on: channelName) == false else { return }
            self.remove(id: consumer.id, from: channelName)
            consumer.fail(RedisConnectionError.commandTimeout(timeout))
        }
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
            carryOut(table.unsubscribeConfirmed(channelName))
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
            case .none:
                break
            case .protocolViolation(let reason):
                protocolViolation(reason)
            }
        }
    }

    func close() {
        isClosed = true
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

    private func protocolViolation(_ reason: String) {
        logger.error("the subscriber is out of step with Redis; reconnecting", metadata: ["reason": "\(reason)"])
        channel?.close(promise: nil)
    }

    private func write(_ command: SubscriptionTable<SubscriptionConsumer>.Command) {
        guard let channel else { return }
        let arguments: [RedisArgument]
        switch command {
        case .subscribe(let name): arguments = ["SUBSCRIBE", .string(name)]
        case .unsubscribe(let name): arguments = ["UNSUBSCRIBE", .string(name)]
        }
        channel.write(HiredisCommandEncoder.encode(arguments, allocator: channel.allocator), promise: nil)
    }
}

@available(*, unavailable)
extension SubscriberCore: Sendable {}
