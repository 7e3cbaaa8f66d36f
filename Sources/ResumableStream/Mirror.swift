import Foundation
import Synchronization

/// One process's copy of a stream that another process produces, shared by every follower of the
/// stream in this process: one resume request, one chunk channel and one buffer, however many
/// followers read it, each at its own offset.
final class Mirror: Sendable {
    enum Start: Sendable, Equatable {
        case acknowledged
        /// The producer finished before answering (as the reference: "finished", not an error).
        case finished
        case failed(ResumableStreamError)
    }

    let streamId: String
    let buffer: StreamBuffer
    /// How the handshake went; followers wait for it before they read.
    let started = OneShot<Start>()

    private let core: ContextCore
    private let machine = Mutex(FollowerHandshake())
    private let lastMessage = Mutex(ContinuousClock.now)
    private let subscription = Mutex<BrokerSubscription?>(nil)
    private let tasks = Mutex<[Task<Void, Never>]>([])

    init(streamId: String, core: ContextCore) {
        self.streamId = streamId
        self.core = core
        self.buffer = StreamBuffer(limit: core.options.streamBufferLimit, budget: core.budget)
    }

    func start() {
        let upstream = Task { await self.run() }
        let watchdog = Task { await self.watch() }
        tasks.withLock { $0 += [upstream, watchdog] }
    }

    /// Stops following; called when the last follower in this process has gone (its readers then
    /// see `.cancelled`), or at shutdown.
    func stop(_ reason: ResumableStreamError = .cancelled) {
        tasks.withLock { $0 }.forEach { $0.cancel() }
        subscription.withLock { $0 }?.cancel()
        buffer.finish(.failed(reason))
        started.set(.failed(reason))
        buffer.release()
    }

    /// Subscribes a listener, asks the producer for everything from what the mirror already has,
    /// and appends what comes. A gap starts it over with a new listener.
    private func run() async {
        while !Task.isCancelled {
            let listenerId = UUID().uuidString
            let events: BrokerSubscription
            do {
                events = try await core.broker.subscribe(to: core.wire.chunkChannel(listenerId))
                subscription.withLock { $0 = events }
                let request = WireProtocol.encode(.resume(listenerId: listenerId, skip: buffer.length, endReasons: true))
                let producers = try await core.broker.publish(request, to: core.wire.requestChannel(streamId))
                if producers == 0, machine.withLock({ $0.requestUnheard() }) == .check {
                    await check()
                }
            } catch {
                perform(.finish(.failed(.broker("\(error)"))))
                return
            }
            let acknowledgement = Task { await self.timeAcknowledgement() }
            defer {
                acknowledgement.cancel()
                events.cancel()
            }
            do {
                for try await event in events {
                    lastMessage.withLock { $0 = .now }
                    let action: FollowerHandshake.Action
                    switch event {
                    case .message(let message): action = machine.withLock { $0.received(message) }
                    case .gap: action = machine.withLock { $0.gap() }
                    }
                    if case .requestAgain = action { break }
                    perform(action)
                    if machine.withLock({ $0.state }) == .done { return }
                }
            } catch {
                perform(.finish(.failed(.broker("\(error)"))))
                return
            }
            if machine.withLock({ $0.state }) == .done { return }
        }
    }

    private func timeAcknowledgement() async {
        guard (try? await Task.sleep(for: core.options.acknowledgementTimeout)) != nil else { return }
        if machine.withLock({ $0.acknowledgementTimedOut() }) == .check {
            await check()
        }
    }

    /// While the stream is idle, checks now and then that it is still live, so that a lost end
    /// message or a producer that died does not leave the followers waiting forever.
    private func watch() async {
        let interval = core.options.watchdogInterval
        while (try? await Task.sleep(for: interval)) != nil {
            guard ContinuousClock.now - lastMessage.withLock({ $0 }) >= interval else { continue }
            if machine.withLock({ $0.idle() }) == .check {
                await check()
            }
            if machine.withLock({ $0.state }) == .done { return }
        }
    }

    private func check() async {
        let sentinel: String?
        let producers: Int
        do {
            sentinel = try await core.broker.get(core.wire.sentinelKey(streamId))
            producers = try await core.broker.subscriberCount(core.wire.requestChannel(streamId))
        } catch {
            perform(.finish(.failed(.broker("\(error)"))))
            return
        }
        perform(machine.withLock { $0.checked(sentinel: sentinel, producers: producers, streamId: streamId) })
    }

    private func perform(_ action: FollowerHandshake.Action) {
        switch action {
        case .acknowledge(let text):
            append(text)
            started.set(.acknowledged)
        case .append(let text):
            append(text)
        case .finish(let outcome):
            machine.withLock { $0.abandon() }
            switch outcome {
            case .completed:
                // Finished before any acknowledgement: the stream was over already.
                started.set(.finished)
            case .failed(let error):
                started.set(.failed(error))
            }
            buffer.finish(outcome)
            subscription.withLock { $0 }?.cancel()
        case .check, .requestAgain, .none:
            break
        }
    }

    private func append(_ text: String) {
        guard !text.isEmpty else { return }
        do {
            try buffer.append(text)
        } catch {
            perform(.finish(.failed(error)))
        }
    }
}
