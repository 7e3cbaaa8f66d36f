/// Thrown by a source whose own producer went away without ending it (an ingest whose client's
/// connection broke): a durable ingest stream then waits for another producer to continue it
/// (``ResumableStreamContext/continueStream(_:from:source:)``); any other stream fails with it.
public struct SourceDetached: Error, Sendable, CustomStringConvertible {
    public let reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}

extension Producer {
    /// Writes a durable stream's chunks to the store as they come, batched: each write takes every
    /// chunk buffered since the last one was sent (up to a frame), so a fast source costs fewer
    /// writes than chunks and a slow one a write per chunk, with no timer. The end goes with the
    /// last batch. Each write publishes the batch to the instances that follow the stream, after
    /// storing it, in one step.
    ///
    /// Runs until the store has the end (or the stream is left to another producer), or this
    /// writer is fenced off, or the task is cancelled; while the store does not answer, it tries
    /// again, and the buffer keeps the text meanwhile.
    func store(_ storage: Storage) async {
        defer { stored.set(()) }
        let frameSize = core.options.frameSize
        var offset = storage.storedLength
        while !Task.isCancelled {
            let read: StreamBuffer.Read
            do {
                read = try await buffer.read(at: offset, maximumBytes: frameSize)
            } catch {
                return
            }
            var frame: String?
            var end = offset
            var outcome: StreamBuffer.Outcome?
            switch read {
            case .text(let pieces, let after):
                frame = ChunkFrames.encode(pieces, maximumBytes: Int.max / 2).first
                end = after
                if case .end(let ended)? = buffer.readNow(at: after) { outcome = ended }
            case .end(let ended):
                outcome = ended
            }
            // A producer that leaves its ingest to another stores its text, not an end.
            let leaving = outcome != nil && detaching.currentValue != nil
            let storedOutcome = leaving ? nil : outcome.map(StoredLog.encodeEnd)
            let result: StoreAppend
            do {
                if frame == nil && storedOutcome == nil {
                    result = .stored(length: offset)
                } else {
                    result = try await storage.store.append(
                        storage.keys, writer: producerId, start: offset, end: end, frame: frame, outcome: storedOutcome, times: core.storedTimes
                    )
                }
            } catch {
                core.logger.debug("could not store a stream's chunks; trying again", metadata: ["stream": "\(streamId)", "error": "\(error)"])
                guard (try? await Task.sleep(for: .milliseconds(250))) != nil else { return }
                continue
            }
            switch result {
            case .stored:
                offset = end
                guard outcome != nil else { continue }
                if leaving {
                    do {
                        try await storage.store.detach(storage.keys, writer: producerId, times: core.storedTimes)
                    } catch {
                        // Its writer lease then runs out by itself, and another may continue it.
                        core.logger.warning("could not leave an ingest to another producer", metadata: ["stream": "\(streamId)", "error": "\(error)"])
                    }
                }
                return
            case .fenced, .ended:
                fence()
                return
            case .elsewhere(let length):
                // The answer of a write was lost (the store has more), or the store lost text
                // (it restarted empty): go on from what it has, if that is where a chunk starts.
                guard buffer.startsChunk(at: length) else {
                    fence()
                    return
                }
                offset = length
            }
        }
    }

    /// The producer has left its stream to another (an ingest left to be continued, or a writer
    /// fenced off): it no longer answers for it.
    var isLeaving: Bool { detaching.currentValue != nil || fenced.currentValue != nil }

    /// A durable stream whose end is stored has ended for every instance; in memory it stays live,
    /// as its sentinel says, until its replay grace is over.
    var hasStoredEnd: Bool { storage != nil && stored.currentValue != nil && buffer.outcome != nil }

    /// Another writer holds the stream, or it was ended as lost while this producer was cut off
    /// from the store: this one stops, and writes nothing more.
    func fence() {
        core.logger.warning("a stream's producer was fenced off: another producer holds it, or it ended as lost", metadata: ["stream": "\(streamId)"])
        fenced.set(())
        buffer.finish(.failed(.producerLost(streamId: streamId)))
        stopRequested.set(())
    }
}
