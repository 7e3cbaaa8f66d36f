import Logging
import Synchronization

/// Runs one stream's source to its end and answers resume requests from other processes.
///
/// The source is pulled in a task of its own, at its own pace, whoever reads: readers in this
/// process read the buffer directly, and each remote listener is one more cursor over the same
/// buffer whose reads go out as PUBLISHes on the listener's channel.
final class Producer: Sendable {
    let streamId: String
    let buffer: StreamBuffer
    /// Set once the producer has marked the sentinel `DONE` and stopped listening.
    let closed = OneShot<Void>()
    /// Set once the source has ended, however it ended.
    let sourceEnded = OneShot<Void>()

    private let core: ContextCore
    private let listeners = Mutex(ProducerListeners())
    private let sourceTask = Mutex<Task<Void, Never>?>(nil)

    init(streamId: String, core: ContextCore) {
        self.streamId = streamId
        self.core = core
        self.buffer = StreamBuffer(limit: core.options.streamBufferLimit, budget: core.budget)
    }

    /// Starts the source, the request listener and the sentinel's renewal. `onClose` runs once the
    /// producer is done with everything.
    func start<Source: AsyncSequence & SendableMetatype>(
        source makeSource: @escaping @Sendable () -> Source,
        requests: BrokerSubscription,
        onClose: @escaping @Sendable () -> Void
    ) where Source.Element == String {
        let renewal = Task { await self.renewSentinel() }
        // Ends when the subscription is cancelled, after the grace.
        Task { await self.answer(requests) }

        let source = Task {
            await self.run(makeSource)
            self.listeners.withLock { $0.sourceEnded() }
            self.sourceEnded.set(())
            if self.core.options.replayGrace > .zero {
                try? await Task.sleep(for: self.core.options.replayGrace)
            }
            self.listeners.withLock { $0.close() }
            do {
                try await self.core.broker.set(
                    self.core.wire.sentinelKey(self.streamId),
                    to: WireProtocol.doneValue,
                    expireInSeconds: self.core.options.sentinelExpirySeconds
                )
            } catch {
                self.core.logger.warning("could not mark a stream done", metadata: ["stream": "\(self.streamId)", "error": "\(error)"])
            }
            requests.cancel()
            renewal.cancel()
            onClose()
            self.buffer.release()
            self.closed.set(())
        }
        sourceTask.withLock { $0 = source }
    }

    /// Stops the source; readers and listeners end with ``ResumableStreamError/cancelled``.
    func cancel() {
        buffer.finish(.failed(.cancelled))
        sourceTask.withLock { $0 }?.cancel()
    }

    private func run<Source: AsyncSequence & SendableMetatype>(_ makeSource: @Sendable () -> Source) async where Source.Element == String {
        do {
            for try await chunk in makeSource() {
                guard !chunk.isEmpty else { continue }
                try buffer.append(chunk)
            }
            buffer.finish(.completed)
        } catch let error as ResumableStreamError {
            buffer.finish(.failed(error))
        } catch {
            // A source that stops because it was cancelled ends the stream as cancelled.
            buffer.finish(.failed(Task.isCancelled ? .cancelled : .sourceFailed("\(error)")))
        }
        if Task.isCancelled {
            buffer.finish(.failed(.cancelled))
        }
    }

    private func answer(_ requests: BrokerSubscription) async {
        do {
            for try await event in requests {
                guard case .message(let message) = event else {
                    // Requests published while the subscription was down are lost; their consumers
                    // time out and may ask again.
                    core.logger.debug("the request channel had a gap", metadata: ["stream": "\(streamId)"])
                    continue
                }
                guard let request = WireProtocol.decodeRequest(message) else {
                    core.logger.debug("ignored a malformed request", metadata: ["stream": "\(streamId)"])
                    continue
                }
                switch listeners.withLock({ $0.received(request) }) {
                case .answer(let listenerId, let skip, let endReasons):
                    // Ends with the stream, or as soon as the listener has gone.
                    Task { await self.publish(to: listenerId, from: skip, endReasons: endReasons) }
                case .cancel:
                    cancel()
                case .ignore:
                    continue
                }
            }
        } catch {
            core.logger.debug("the request subscription ended", metadata: ["stream": "\(streamId)", "error": "\(error)"])
        }
    }

    /// Answers one listener: what is buffered from `skip` (at least one message, which is the
    /// acknowledgement), then each new chunk, then the end. Reads are coalesced into frames of at
    /// most the frame size, so a listener that lags costs fewer PUBLISHes, never more memory.
    private func publish(to listenerId: String, from skip: Int, endReasons: Bool) async {
        defer { listeners.withLock { $0.listenerEnded(listenerId) } }
        let channel = core.wire.chunkChannel(listenerId)
        let frameSize = core.options.frameSize
        var offset = skip
        var first = true
        do {
            while true {
                let read = first
                    ? buffer.readNow(at: offset, maximumBytes: frameSize) ?? .text([""], end: offset)
                    : try await buffer.read(at: offset, maximumBytes: frameSize)
                first = false
                switch read {
                case .text(let pieces, let end):
                    let text = pieces.count == 1 ? pieces[0] : Substring(pieces.joined())
                    offset = end
                    for frame in TextUnits.frames(of: text, maximumBytes: frameSize) {
                        // Nobody received it: the listener has gone, stop answering it.
                        guard try await core.broker.publish(String(frame), to: channel) > 0 else { return }
                    }
                case .end(let outcome):
                    try await core.broker.publish(WireProtocol.endMessage(Self.endReason(outcome), extended: endReasons), to: channel)
                    return
                }
            }
        } catch {
            core.logger.debug("stopped answering a listener", metadata: ["stream": "\(streamId)", "error": "\(error)"])
        }
    }

    /// Renews the sentinel's expiry at half its length while the producer lives, so that a stream
    /// may outlive the expiry and a dead producer's sentinel still goes away.
    private func renewSentinel() async {
        let seconds = core.options.sentinelExpirySeconds
        let key = core.wire.sentinelKey(streamId)
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .seconds(max(seconds, 2)) / 2)
                try await core.broker.expire(key, seconds: seconds)
            } catch {
                if Task.isCancelled { return }
                core.logger.debug("could not renew a sentinel", metadata: ["stream": "\(streamId)", "error": "\(error)"])
            }
        }
    }

    static func endReason(_ outcome: StreamBuffer.Outcome) -> WireProtocol.EndReason {
        switch outcome {
        case .completed: return .completed
        case .failed(.cancelled): return .cancelled
        case .failed(let error): return .failed(error.description)
        }
    }
}
