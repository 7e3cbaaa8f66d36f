import Foundation
import Logging
import Synchronization

/// Runs one stream's source to its end and answers resume requests from other processes.
///
/// ``run(source:requests:)`` is the producer's one owner task (a child of the context's). Its
/// children pull the source at its own pace, whoever reads, keep the sentinel's lease, and answer
/// each remote listener; its own loop takes the resume requests in order. Readers in this process
/// read the buffer directly, and each remote listener is one more cursor over the same buffer
/// whose reads go out as PUBLISHes on the listener's channel.
final class Producer: Sendable {
    let streamId: String
    let buffer: StreamBuffer
    /// Set once the producer has marked the sentinel `DONE` and stopped listening.
    let closed = OneShot<Void>()
    /// Set once the source has ended, however it ended.
    let sourceEnded = OneShot<Void>()

    /// Names this stream's producer in the first message of each answer (see
    /// ``WireProtocol/marked(_:producer:)``), and is its writer's token in the store.
    let producerId: String
    /// How a durable stream's producer writes the store; `nil` in memory.
    let storage: Storage?
    let core: ContextCore
    private let listeners = Mutex(ProducerListeners())
    private let lease: Mutex<SentinelLease>
    /// Set by ``cancel()``: ends the source, or the replay grace if the source has ended.
    let stopRequested = OneShot<Void>()
    /// Set when the source of an ingest that may be continued has gone without an end: the
    /// stream is left to another producer, not ended.
    let detaching = OneShot<Void>()
    /// Set when the store told this producer that another holds its stream (durable streams).
    let fenced = OneShot<Void>()
    /// Set once the store has everything this producer will write there (durable streams).
    let stored = OneShot<Void>()

    struct Storage: Sendable {
        let store: any StreamStore
        let keys: StoredStreamKeys
        /// An ingest whose producer may go away, and be continued by another.
        let ingest: Bool
        /// What the store holds already (a continued ingest): the writer starts there.
        let storedLength: Int
    }

    /// - Parameter claimedAt: when Redis created the sentinel, with a lease's expiry.
    init(streamId: String, core: ContextCore, claimedAt: ContinuousClock.Instant, producerId: String = UUID().uuidString, storage: Storage? = nil) {
        self.streamId = streamId
        self.core = core
        self.producerId = producerId
        self.storage = storage
        self.buffer = StreamBuffer(limit: core.options.streamBufferLimit, budget: core.budget)
        self.lease = Mutex(SentinelLease(lease: .seconds(core.options.leaseSeconds), now: claimedAt))
    }

    /// Produces the stream: returns once the sentinel says `DONE` and nothing of the stream runs.
    /// `onSourceEnded` runs once the source has ended (the replay grace begins); `onClose` runs
    /// at the end, before ``closed`` is set.
    func run<Source: AsyncSequence & SendableMetatype>(
        source makeSource: @escaping @Sendable () -> Source,
        requests: BrokerSubscription,
        onSourceEnded: @escaping @Sendable () -> Void,
        onClose: @Sendable () -> Void
    ) async where Source.Element == String {
        let produced = OneShot<Void>()
        await withDiscardingTaskGroup { group in
            group.addTask {
                await self.produce(makeSource, onSourceEnded: onSourceEnded)
                produced.set(())
                // Ends the request loop below, and with it the lease and the listeners.
                requests.cancel()
            }
            group.addTask { await self.keepLease(until: produced) }
            if let storage {
                group.addTask { await self.store(storage) }
            } else {
                stored.set(())
            }
            await answer(requests, in: &group)
            // The requests also end when the subscriber is closed under them: that stops the
            // answers, not the source. The group then waits for the lease to stop and for each
            // listener's answer to end with its end message: never cut short, bounded by the
            // broker's timeout.
        }
        onClose()
        buffer.release()
        closed.set(())
    }

    /// Stops the source; readers and listeners end with ``ResumableStreamError/cancelled``. A
    /// stream whose source has ended gives up the rest of its replay grace.
    func cancel() {
        buffer.finish(.failed(.cancelled))
        stopRequested.set(())
    }

    /// The source, then the replay grace, then `DONE`.
    private func produce<Source: AsyncSequence & SendableMetatype>(
        _ makeSource: @escaping @Sendable () -> Source,
        onSourceEnded: @escaping @Sendable () -> Void
    ) async where Source.Element == String {
        await untilStopped { await self.pull(makeSource, onSourceEnded: onSourceEnded) }
        // Cancelled before it ended: readers see `.cancelled`, never a shorter text as complete.
        endSource(.failed(.cancelled), onSourceEnded: onSourceEnded)
        if storage != nil {
            // The end goes to the store before the sentinel may say `DONE`.
            _ = await stored.wait()
        }
        if detaching.currentValue != nil || fenced.currentValue != nil {
            // Left to another producer: no grace, and the stream is not done here.
            listeners.withLock { $0.close() }
            return
        }
        if core.options.replayGrace > .zero {
            // Ends early when the stream is cancelled.
            _ = await stopRequested.wait(timeout: core.options.replayGrace)
        }
        listeners.withLock { $0.close() }
        do {
            try await core.broker.set(
                core.wire.sentinelKey(streamId),
                to: WireProtocol.doneValue,
                expireInSeconds: core.options.doneExpirySeconds
            )
        } catch {
            // The lease then expires by itself: the id is free again rather than finished.
            core.logger.warning("could not mark a stream done", metadata: ["stream": "\(streamId)", "error": "\(error)"])
        }
    }

    /// Runs `body` until it returns or ``cancel()`` is called, whichever comes first.
    private func untilStopped(_ body: @escaping @Sendable () async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await body() }
            group.addTask { _ = await self.stopRequested.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    private func pull<Source: AsyncSequence & SendableMetatype>(
        _ makeSource: @Sendable () -> Source,
        onSourceEnded: @Sendable () -> Void
    ) async where Source.Element == String {
        let outcome: StreamBuffer.Outcome
        do {
            for try await chunk in makeSource() {
                guard !chunk.isEmpty else { continue }
                try buffer.append(chunk)
            }
            // A source that returns because it was cancelled has not completed.
            outcome = Task.isCancelled ? .failed(.cancelled) : .completed
        } catch let error as ResumableStreamError {
            outcome = .failed(error)
        } catch let error as SourceDetached where storage?.ingest == true {
            // Its readers here end; the stream waits in the store for another producer.
            core.logger.info("an ingest's producer went away; the stream waits to be continued", metadata: ["stream": "\(streamId)", "reason": "\(error.reason)"])
            detaching.set(())
            outcome = .failed(.producerLost(streamId: streamId))
        } catch {
            // A source that stops because it was cancelled ends the stream as cancelled.
            outcome = .failed(Task.isCancelled ? .cancelled : .sourceFailed("\(error)"))
        }
        endSource(outcome, onSourceEnded: onSourceEnded)
    }

    /// Ends the source once. The stream stops counting as produced before any reader can see its
    /// end, so that a client that read the end may start another stream at once without meeting
    /// the stream limit.
    private func endSource(_ outcome: StreamBuffer.Outcome, onSourceEnded: @Sendable () -> Void) {
        let first = listeners.withLock { listeners in
            let producing = listeners.phase == .producing
            listeners.sourceEnded()
            return producing
        }
        if first { onSourceEnded() }
        buffer.finish(outcome)
        if first { sourceEnded.set(()) }
    }

    private func answer(_ requests: BrokerSubscription, in group: inout DiscardingTaskGroup) async {
        do {
            for try await event in requests {
                guard case .message(let message) = event else {
                    // Requests published while the subscription was down are lost; their consumers
                    // time out and ask again. Redis may have restarted empty: the sentinel is
                    // re-asserted now, so that the stream is joinable again at once.
                    core.logger.debug("the request channel had a gap", metadata: ["stream": "\(streamId)"])
                    lease.withLock { $0.brokerGap(at: .now) }
                    group.addTask { await self.renewLease() }
                    continue
                }
                guard let request = WireProtocol.decodeRequest(message) else {
                    core.logger.debug("ignored a malformed request", metadata: ["stream": "\(streamId)"])
                    continue
                }
                switch listeners.withLock({ $0.received(request) }) {
                case .answer(let listenerId, let skip, let endReasons):
                    // Ends with the stream, or as soon as the listener has gone.
                    group.addTask { await self.publish(to: listenerId, from: skip, endReasons: endReasons) }
                case .cancel:
                    cancel()
                case .identify(let listenerId, let answering):
                    let message = WireProtocol.marked(answering ? "" : WireProtocol.unansweredProbeReply, producer: producerId)
                    let channel = core.wire.chunkChannel(listenerId, of: streamId)
                    group.addTask { _ = try? await self.core.broker.publish(message, to: channel) }
                case .ignore:
                    continue
                }
            }
        } catch {
            core.logger.debug("the request subscription ended", metadata: ["stream": "\(streamId)", "error": "\(error)"])
        }
    }

    /// Renews the sentinel's lease whenever it is due, until the stream is `DONE` (`produced` is
    /// set, or the sentinel says so) or the task is cancelled.
    private func keepLease(until produced: OneShot<Void>) async {
        while !Task.isCancelled, produced.currentValue == nil {
            let (due, ended) = lease.withLock { ($0.nextRenewal, $0.ended) }
            if ended { return }
            if due > .now {
                // Until the renewal is due, unless the stream is done first.
                if await produced.wait(timeout: due - .now) != nil { return }
                continue
            }
            await renewLease()
        }
    }

    private func renewLease() async {
        do {
            let live: Bool
            if let storage {
                live = try await storage.store.renew(storage.keys, writer: producerId, ingest: storage.ingest, times: core.storedTimes)
                // After its end the sentinel says `DONE` at the close of the grace: that is no fence.
                if !live, sourceEnded.currentValue == nil { fence() }
            } else {
                live = try await core.broker.renewLease(core.wire.sentinelKey(streamId), seconds: core.options.leaseSeconds)
            }
            lease.withLock { $0.renewed(at: .now, stillLive: live) }
        } catch {
            if Task.isCancelled { return }
            let lapsed = lease.withLock { lease in
                lease.renewalFailed(at: .now)
                return lease.mayHaveLapsed(now: .now)
            }
            core.logger.log(
                level: lapsed ? .warning : .debug,
                lapsed ? "the stream's lease may have lapsed: Redis did not renew it for a whole lease" : "could not renew a stream's lease",
                metadata: ["stream": "\(streamId)", "error": "\(error)"]
            )
        }
    }

    /// Answers one listener: what is buffered from `skip` (at least one message, which is the
    /// acknowledgement), then each new chunk, then the end. Reads are coalesced into frames of at
    /// most the frame size, so a listener that lags costs fewer PUBLISHes, never more memory.
    private func publish(to listenerId: String, from skip: Int, endReasons: Bool) async {
        defer { listeners.withLock { $0.listenerEnded(listenerId) } }
        let channel = core.wire.chunkChannel(listenerId, of: streamId)
        let frameSize = core.options.frameSize
        var offset = skip
        var first = true
        // A listener of this project learns from the first message which producer answers it.
        var mark = endReasons
        func message(_ text: String) -> String {
            defer { mark = false }
            return mark ? WireProtocol.marked(text, producer: producerId) : text
        }
        do {
            while true {
                // A small first frame: the follower's readers start with it, while the rest of a
                // long replay is still on its way.
                let read = first
                    ? buffer.readNow(at: offset, maximumBytes: min(frameSize, 4 * 1024)) ?? .text([""], end: offset)
                    : try await buffer.read(at: offset, maximumBytes: frameSize)
                first = false
                switch read {
                case .text(let pieces, let end):
                    offset = end
                    for frame in Self.messages(pieces, extended: endReasons, frameSize: frameSize) {
                        // Nobody received it: the listener has gone, stop answering it.
                        guard try await core.broker.publish(message(frame), to: channel) > 0 else { return }
                    }
                case .end(let outcome):
                    try await core.broker.publish(message(WireProtocol.endMessage(Self.endReason(outcome), extended: endReasons)), to: channel)
                    return
                }
            }
        } catch {
            core.logger.debug("stopped answering a listener", metadata: ["stream": "\(streamId)", "error": "\(error)"])
        }
    }

    /// A reference listener gets the text as the reference sends it, cut into frames; a listener
    /// of this project gets the chunks' boundaries too (``ChunkFrames``).
    static func messages(_ pieces: [Substring], extended: Bool, frameSize: Int) -> [String] {
        if extended {
            return ChunkFrames.encode(pieces, maximumBytes: frameSize)
        }
        let text = pieces.count == 1 ? pieces[0] : Substring(pieces.joined())
        return TextUnits.frames(of: text, maximumBytes: frameSize).map(String.init)
    }

    static func endReason(_ outcome: StreamBuffer.Outcome) -> WireProtocol.EndReason {
        switch outcome {
        case .completed: return .completed
        case .failed(.cancelled): return .cancelled
        // A follower reads a failure as the source's: its own words, not wrapped twice.
        case .failed(.sourceFailed(let reason)): return .failed(reason)
        case .failed(let error): return .failed(error.description)
        }
    }
}
