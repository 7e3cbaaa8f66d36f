import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Keeps one connection to Redis open: when it is lost, opens a new one with capped exponential
/// backoff until it succeeds or the owner closes it.
///
/// Shared by the command client and the subscriber; `prepare` (after the handshake) and
/// `onConnect`/`onDisconnect` (on the event loop) are where they differ.
final class ReconnectingConnection: Sendable {
    private enum State {
        case connecting
        case connected(any Channel)
        /// `waiters` completes once a new connection is up; `retry` is the pending attempt.
        case reconnecting(waiters: EventLoopPromise<any Channel>, attempt: Int, retry: Scheduled<Void>?)
        case closed
    }

    let configuration: RedisConfiguration
    let eventLoop: any EventLoop
    private let logger: Logger
    /// Counts the command pipeline of every connection this opens (the client's; not the subscriber's).
    private let counters: PipelineCounters?
    private let state = NIOLockedValueBox(State.connecting)
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
    }

    /// Opens the first connection. Its failure is final: a wrong password or an unreachable server
    /// is reported to the caller instead of being retried in the background.
    func start() -> EventLoopFuture<Void> {
        open().flatMapWithEventLoop { channel, eventLoop in
            let adopted = self.state.withLockedValue { state -> Bool in
                guard case .connecting = state else { return false }
                state = .connected(channel)
                return true
            }
            guard adopted else {
                channel.close(promise: nil)
                return eventLoop.makeFailedFuture(RedisConnectionError.closed)
            }
            self.connected(channel)
            return eventLoop.makeSucceededVoidFuture()
        }.flatMapErrorThrowing { error in
            self.state.withLockedValue { $0 = .closed }
            throw error
        }
    }

    /// The open connection, if there is one right now.
    var currentChannel: (any Channel)? {
        state.withLockedValue { state in
            if case .connected(let channel) = state { return channel }
            return nil
        }
    }

    /// The open connection, waiting for a reconnection until `deadline` if needed.
    func channel(deadline: NIODeadline) -> EventLoopFuture<any Channel> {
        let waiters: EventLoopPromise<any Channel>? = state.withLockedValue { state in
            if case .reconnecting(let waiters, _, _) = state { return waiters }
            return nil
        }
        switch (currentChannel, waiters) {
        case (let channel?, _):
            return eventLoop.makeSucceededFuture(channel)
        case (nil, let waiters?):
            let promise = eventLoop.makePromise(of: (any Channel).self)
            waiters.futureResult.cascade(to: promise)
            let timeout = eventLoop.scheduleTask(deadline: deadline) {
                promise.fail(RedisConnectionError.commandTimeout(self.configuration.commandTimeout))
            }
            promise.futureResult.whenComplete { _ in timeout.cancel() }
            return promise.futureResult
        case (nil, nil):
            return eventLoop.makeFailedFuture(RedisConnectionError.closed)
        }
    }

    /// Closes the connection and stops reconnecting; waiting callers fail with `.closed`.
    func close() -> EventLoopFuture<Void> {
        let previous = state.withLockedValue { state in
            defer { state = .closed }
            return state
        }
        switch previous {
        case .connected(let channel):
            let promise = eventLoop.makePromise(of: Void.self)
            channel.close(promise: promise)
            return promise.futureResult.recover { _ in }
        case .reconnecting(let waiters, _, let retry):
            retry?.cancel()
            waiters.fail(RedisConnectionError.closed)
            return eventLoop.makeSucceededVoidFuture()
        case .connecting, .closed:
            return eventLoop.makeSucceededVoidFuture()
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

    /// Runs on the event loop with `channel` already recorded as the connection.
    private func connected(_ channel: any Channel) {
        logger.debug("connected to Redis", metadata: ["redis": "\(configuration)"])
        onConnect(channel)
        channel.closeFuture.whenComplete { _ in
            self.lost(channel)
        }
    }

    private func lost(_ channel: any Channel) {
        let reconnect = state.withLockedValue { state -> Bool in
            guard case .connected(let current) = state, current === channel else { return false }
            state = .reconnecting(waiters: eventLoop.makePromise(), attempt: 0, retry: nil)
            return true
        }
        guard reconnect else { return }
        logger.info("lost the connection to Redis; reconnecting", metadata: ["redis": "\(configuration)"])
        onDisconnect()
        attempt()
    }

    private func attempt() {
        open().whenComplete { result in
            switch result {
            case .success(let channel):
                let waiters = self.state.withLockedValue { state -> EventLoopPromise<any Channel>? in
                    guard case .reconnecting(let waiters, _, _) = state else { return nil }
                    state = .connected(channel)
                    return waiters
                }
                guard let waiters else {
                    channel.close(promise: nil)
                    return
                }
                self.logger.info("reconnected to Redis", metadata: ["redis": "\(self.configuration)"])
                self.connected(channel)
                waiters.succeed(channel)
            case .failure(let error):
                self.state.withLockedValue { state in
                    guard case .reconnecting(let waiters, let attempt, _) = state else { return }
                    let delay = self.configuration.reconnectDelay(attempt: attempt)
                    self.logger.debug(
                        "reconnecting to Redis failed",
                        metadata: ["error": "\(error)", "retryInMilliseconds": "\(delay.nanoseconds / 1_000_000)"]
                    )
                    let retry = self.eventLoop.scheduleTask(in: delay) { self.attempt() }
                    state = .reconnecting(waiters: waiters, attempt: attempt + 1, retry: retry)
                }
            }
        }
    }
}
