import Foundation
import Synchronization

/// One process's copy of a stream that another process produces, shared by every follower of the
/// stream in this process: one resume request, one chunk channel and one buffer, however many
/// followers read it, each at its own offset.
///
/// ``run()`` is the mirror's one owner task (a child of the context's): it keeps the upstream and
/// owns, as its own children, the acknowledgement timers and the idle watchdog. The handshake's
/// state machine decides; this class carries its actions out.
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
    private let machine: Mutex<FollowerHandshake>
    private let lastMessage = Mutex(ContinuousClock.now)
    /// The current upstream's chunk boundaries (``ChunkFrames``).
    private let frames = Mutex(ChunkFrames.Decoder())
    /// The current upstream's subscription, and which request it carries (acknowledgement timers
    /// of earlier requests find another number and do nothing).
    private let upstream = Mutex<(subscription: BrokerSubscription?, request: Int, listenerId: String)>((nil, 0, ""))

    init(streamId: String, core: ContextCore) {
        self.streamId = streamId
        self.core = core
        self.buffer = StreamBuffer(limit: core.options.streamBufferLimit, budget: core.budget)
        // A live producer re-asserts its sentinel at once when Redis is back, and renews it every
        // third of its lease: gone for a lease and an acknowledgement timeout, it is dead.
        let recovery = Duration.seconds(core.options.leaseSeconds) + core.options.acknowledgementTimeout
        self.machine = Mutex(FollowerHandshake(streamId: streamId, recoveryLimit: recovery))
    }

    /// Follows the stream until it ends or ``stop(_:)`` is called.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.watch() }
            await self.follow(in: &group)
            group.cancelAll()
        }
    }

    /// Stops following; called when the last follower in this process has gone (its readers then
    /// see `.cancelled`), or at shutdown.
    func stop(_ reason: ResumableStreamError = .cancelled) {
        machine.withLock { $0.abandon() }
        upstream.withLock { $0.subscription }?.cancel()
        buffer.finish(.failed(reason))
        started.set(.failed(reason))
        buffer.release()
    }

    private var isDone: Bool { machine.withLock { $0.state == .done } }

    /// Subscribes a listener, asks the producer for everything from what the mirror already has,
    /// and appends what comes. A gap, or a recovery that asks again, starts it over with a new
    /// listener.
    private func follow(in group: inout DiscardingTaskGroup) async {
        while !isDone, !Task.isCancelled {
            let listenerId = UUID().uuidString
            let events: BrokerSubscription
            let request: Int
            do {
                events = try await core.broker.subscribe(to: core.wire.chunkChannel(listenerId, of: streamId))
                request = upstream.withLock { upstream in
                    upstream.subscription = events
                    upstream.request += 1
                    upstream.listenerId = listenerId
                    return upstream.request
                }
                // A chunk that the last upstream left half sent comes again whole: the request
                // asks from the buffer's length.
                frames.withLock { $0 = ChunkFrames.Decoder() }
                if isDone {
                    // Stopped while subscribing.
                    events.cancel()
                    return
                }
                let message = WireProtocol.encode(.resume(listenerId: listenerId, skip: buffer.length, endReasons: true))
                // Who received it is not counted: in a Redis Cluster a PUBLISH counts one node's
                // subscribers only. The acknowledgement, or its timeout, tells.
                try await core.broker.publish(message, to: core.wire.requestChannel(streamId))
            } catch {
                if Task.isCancelled { return }
                perform(machine.withLock { $0.brokerFailed("\(error)", now: .now) })
                if !isDone {
                    // Asking again at once would spin while the broker is away.
                    try? await Task.sleep(for: .milliseconds(250))
                }
                continue
            }
            group.addTask { await self.timeAcknowledgement(of: request) }
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
                    if isDone { break }
                }
            } catch {
                if !Task.isCancelled {
                    perform(machine.withLock { $0.brokerFailed("\(error)", now: .now) })
                }
            }
            events.cancel()
        }
    }

    private func timeAcknowledgement(of request: Int) async {
        guard (try? await Task.sleep(for: core.options.acknowledgementTimeout)) != nil else { return }
        guard upstream.withLock({ $0.request }) == request else { return }
        if machine.withLock({ $0.acknowledgementTimedOut() }) == .check {
            await check()
        }
    }

    /// While the stream is idle, checks now and then that it is still live, so that a lost end
    /// message or a producer that died does not leave the followers waiting forever.
    /// The check comes one interval after the last message, not on a fixed beat that could make
    /// it nearly two intervals late.
    private func watch() async {
        let interval = core.options.watchdogInterval
        var notBefore = ContinuousClock.now + interval
        while !Task.isCancelled {
            let due = max(lastMessage.withLock { $0 } + interval, notBefore)
            if due > .now {
                guard (try? await Task.sleep(until: due, clock: .continuous)) != nil else { return }
                continue
            }
            if machine.withLock({ $0.idle() }) == .check {
                await check()
            }
            if isDone { return }
            notBefore = .now + interval
        }
    }

    private func check() async {
        let action: FollowerHandshake.Action
        do {
            let sentinel = try await core.broker.get(core.wire.sentinelKey(streamId))
            action = machine.withLock { $0.checked(sentinel: sentinel, now: .now) }
        } catch {
            if Task.isCancelled { return }
            action = machine.withLock { $0.brokerFailed("\(error)", now: .now) }
        }
        if action == .probe {
            await probe()
        } else {
            perform(action)
        }
    }

    /// Asks the stream's producer to name itself, and whether it still answers the upstream's
    /// listener, on a listener of its own, so that the upstream is left as it is; waits for the
    /// answer as long as for an acknowledgement.
    private func probe() async {
        let listenerId = "probe-\(UUID().uuidString)"
        let answer: String?
        do {
            let answers = try await core.broker.subscribe(to: core.wire.chunkChannel(listenerId, of: streamId))
            defer { answers.cancel() }
            let request = WireProtocol.encode(.probe(listenerId: listenerId, about: upstream.withLock { $0.listenerId }))
            try await core.broker.publish(request, to: core.wire.requestChannel(streamId))
            answer = await withTaskGroup(of: String??.self) { group in
                group.addTask {
                    var iterator = answers.makeAsyncIterator()
                    while let event = try? await iterator.next() {
                        if case .message(let message) = event { return .some(message) }
                    }
                    return .some(nil)
                }
                group.addTask {
                    try? await Task.sleep(for: self.core.options.acknowledgementTimeout)
                    return .none
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first ?? nil
            }
        } catch {
            if Task.isCancelled { return }
            perform(machine.withLock { $0.brokerFailed("\(error)", now: .now) })
            return
        }
        let (producer, text) = answer.map(WireProtocol.producerMark(of:)) ?? (nil, "")
        perform(machine.withLock {
            $0.probed(producer: producer, answering: text != WireProtocol.unansweredProbeReply)
        })
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
            upstream.withLock { $0.subscription }?.cancel()
        case .requestAgain:
            // Ends the current upstream's loop; `follow` asks again with a new listener.
            upstream.withLock { $0.subscription }?.cancel()
        case .check, .probe, .none:
            break
        }
    }

    private func append(_ message: String) {
        let chunks = frames.withLock { $0.decode(message[...]) }
        do {
            try buffer.append(contentsOf: chunks)
        } catch {
            perform(.finish(.failed(error)))
        }
    }
}
