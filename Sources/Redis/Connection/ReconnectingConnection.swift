import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Keeps one connection to Redis open: when it is lost, opens a new one with capped exponential
/// backoff until it succeeds or the owner closes it.
///
/// The decisions are ``ReconnectStateMachine``'s; this class carries out its actions (opening
/// connections, timers, waking waiters). The machine sits behind a lock rather than on the event
/// loop alone, because every command reads ``currentChannel`` from its caller's thread.
///
/// Shared by the command client and the subscriber; `prepare` (after the handshake) and
/// `onConnect`/`onDisconnect` (on the event loop) are where they differ.
final class ReconnectingConnection: Sendable {
    private typealias StateMachine = ReconnectStateMachine<any Channel, EventLoopPromise<any Channel>>

    private struct State: Sendable {
        var machine: StateMachine
        /// The pending retry, cancelled when the owner closes.
        var retry: Scheduled<Void>?
    }

    let configuration: RedisConfiguration
    let eventLoop: any EventLoop
    private let logger: Logger
    /// Counts the command pipeline of every connection this opens (the client's; not the subscriber's).
    private let counters: PipelineCounters?
    private let state: NIOLockedValueBox<State>
    private let prepare: @Sendable (any Channel) -> EventLoopFuture<Void>
    private let onConnect: @Sendable (any Channel) -> Void
    private let onDisconnect: @Sendable () -> Void

    init(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        logger: Logger,
        counters: PipelineCounters? = nil,
        prepare: @escaping @Sendable (any Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() },
        onConnect: @escaping @Sendable (any Channel) -> Void = { _ in },
        onDisconnect: @escaping @Sendable () -> Void = {}
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.counters = counters
        self.prepare = prepare
        self.onConnect = onConnect
        self.onDisconnect = onDisconnect
        self.state = NIOLockedValueBox(State(machine: StateMachine(backoff: configuration.reconnectDelay(attempt:))))
    }

    /// Opens the first connection. Its failure is final: a wrong password or an unreachable server
    /// is reported to the caller instead of being retried in the background.
    func start() -> EventLoopFuture<Void> {
        guard case .open = withMachine({ $0.start() }) else {
            return eventLoop.makeFailedFuture(RedisConnectionError.closed)
        }
        return open().flatMapWithEventLoop { channel, eventLoop in
            let action = self.withMachine { $0.startSucceeded(channel) }
            self.run(action)
            guard case .adopt = action else {
                return eventLoop.makeFailedFuture(RedisConnectionError.closed)
            }
            return eventLoop.makeSucceededVoidFuture()
        }.flatMapErrorThrowing { error in
            self.run(self.withMachine { $0.startFailed() })
            throw error
        }
    }

    /// The open connection, if there is one right now.
    var currentChannel: (any Channel)? {
        state.withLockedValue { $0.machine.currentConnection }
    }

    /// The open connection, waiting for a reconnection until `deadline` if needed.
    ///
    /// - Throws: ``RedisConnectionError/commandTimeout(_:)`` at `deadline`, whatever a reconnection
    ///   attempt's own connect timeout is; `CancellationError` as soon as the task is cancelled;
    ///   ``RedisConnectionError/closed`` when the owner closes.
    func channel(deadline: NIODeadline) async throws -> any Channel {
        try Task.checkCancellation()
        let promise = eventLoop.makePromise(of: (any Channel).self)
        switch withMachine({ $0.waiterArrived(promise) }) {
        case .ready(let channel):
            promise.succeed(channel)
            return channel
        case .fail(let error):
            promise.fail(error)
            throw error
        case .wait(let id):
            let timeout = eventLoop.scheduleTask(deadline: deadline) {
                self.waiterLeft(id: id, error: RedisConnectionError.commandTimeout(self.configuration.commandTimeout))
            }
            promise.futureResult.whenComplete { _ in timeout.cancel() }
            return try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: {
                self.waiterLeft(id: id, error: CancellationError())
            }
        }
    }

    /// Closes the connection and stops reconnecting; waiting callers fail with `.closed`.
    func close() -> EventLoopFuture<Void> {
        let (action, retry) = state.withLockedValue { state in
            defer { state.retry = nil }
            return (state.machine.closeRequested(), state.retry)
        }
        retry?.cancel()
        guard case .closeConnection(let channel) = action else {
            run(action)
            return eventLoop.makeSucceededVoidFuture()
        }
        let promise = eventLoop.makePromise(of: Void.self)
        channel.close(promise: promise)
        return promise.futureResult.recover { _ in }
    }

    private func withMachine<Result>(_ body: (inout StateMachine) -> Result) -> Result {
        state.withLockedValue { body(&$0.machine) }
    }

    private func waiterLeft(id: Int, error: any Error) {
        withMachine { $0.waiterLeft(id: id) }?.fail(error)
    }

    /// Carries out what the machine decided. Outside the lock: what it calls may call back in.
    private func run(_ action: StateMachine.Action) {
        switch action {
        case .none:
            break
        case .open:
            attempt()
        case .adopt(let channel, let generation, let waiters):
            if generation == 0 {
                logger.debug("connected to Redis", metadata: ["redis": "\(configuration)"])
            } else {
                logger.info("reconnected to Redis", metadata: ["redis": "\(configuration)"])
            }
            onConnect(channel)
            channel.closeFuture.whenComplete { _ in
                self.run(self.withMachine { $0.connectionLost(generation: generation) })
            }
            for waiter in waiters {
                waiter.succeed(channel)
            }
        case .closeConnection(let channel):
            channel.close(promise: nil)
        case .reconnect:
            logger.info("lost the connection to Redis; reconnecting", metadata: ["redis": "\(configuration)"])
            onDisconnect()
            attempt()
        case .scheduleRetry(let delay):
            logger.debug(
                "reconnecting to Redis failed",
                metadata: ["retryInMilliseconds": "\(delay.nanoseconds / 1_000_000)"]
            )
            let retry = eventLoop.scheduleTask(in: delay) {
                self.run(self.withMachine { $0.retryTimerFired() })
            }
            // A close that came in between found no retry to cancel: this one is cancelled here.
            let kept = state.withLockedValue { state -> Bool in
                guard !state.machine.isClosed else { return false }
                state.retry = retry
                return true
            }
            if !kept { retry.cancel() }
        case .failWaiters(let waiters):
            for waiter in waiters {
                waiter.fail(RedisConnectionError.closed)
            }
        }
    }

    private func attempt() {
        open().whenComplete { result in
            switch result {
            case .success(let channel):
                self.run(self.withMachine { $0.attemptSucceeded(channel) })
            case .failure(let error):
                self.logger.debug("a reconnection attempt failed", metadata: ["error": "\(error)"])
                self.run(self.withMachine { $0.attemptFailed() })
            }
        }
    }

    private func open() -> EventLoopFuture<any Channel> {
        RedisConnector.connect(configuration: configuration, eventLoop: eventLoop, logger: logger, counters: counters)
            .flatMap { channel in
                self.prepare(channel).map { channel }.flatMapError { error in
                    channel.close(promise: nil)
                    return self.eventLoop.makeFailedFuture(error)
                }
            }
    }
}
