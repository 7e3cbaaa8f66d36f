import NIOCore
import ResumableStream

/// Writes one reader into its connection from the connection's event loop, with no task in
/// between: it takes what the stream has when the connection can take it, registers to be told
/// when there is more (``ResumableStreamObserver``), and is told by the connection's
/// ``StreamWriterHandler`` when the socket has room again.
///
/// A chunk then costs a follower a poll of the stream under its lock, its encoding and one write
/// to the socket: the followers of one loop are told of the chunk in one job, where a writer in a
/// task costs a resumed continuation, a hop onto the loop and Hummingbird's and NIO's async
/// writers for each of them. A follower that does not read is not told (it is not registered
/// while its socket is full) and holds at most what the connection's write limits allow.
///
/// Everything here runs on `eventLoop`. The task that wrote the response's head does not wait:
/// the writer ends the response itself (through its handler), and holds the reader's slot until
/// then, so that a follower costs no task and no task's stack while it waits for text.
final class ChannelStreamWriter: ResumableStreamObserver, @unchecked Sendable {
    let eventLoop: any EventLoop
    private let handler: StreamWriterHandler
    private let reader: ResumableStreamReader
    private let framer: StreamFramer
    private let writeSize: Int
    private let heartbeat: TimeAmount
    private let metrics: StreamMetrics
    private let done: EventLoopPromise<Void>
    /// The reader's place among the limited ones, given back when the writer ends.
    private var slot: ReaderSlot?

    /// The offset after the last chunk written whole.
    private var offset: Int
    /// Chunks taken from the stream and not yet begun, and the one being written.
    private var queued: ArraySlice<ResumableStreamChunk> = []
    private var part: StreamFramer.ChunkPart?
    private var ended = false
    /// Registered with the stream: nothing to write until it has more.
    private var waitingForText = false
    /// When the writer last wrote, from which the next heartbeat counts.
    private var lastWrite = NIODeadline.now()
    private var heartbeatTimer: Scheduled<Void>?

    private init(
        handler: StreamWriterHandler,
        eventLoop: any EventLoop,
        reader: ResumableStreamReader,
        framer: StreamFramer,
        writeSize: Int,
        heartbeat: TimeAmount,
        metrics: StreamMetrics,
        slot: ReaderSlot?
    ) {
        self.handler = handler
        self.slot = slot
        self.eventLoop = eventLoop
        self.reader = reader
        self.framer = framer
        self.writeSize = writeSize
        self.heartbeat = heartbeat
        self.metrics = metrics
        self.offset = reader.startOffset
        self.done = eventLoop.makePromise()
    }

    /// Starts writing `reader` into `channel`'s response body and ending the response, or returns
    /// `nil` when the channel has no ``StreamWriterHandler`` (the caller writes from its task then).
    static func start(
        on channel: any Channel,
        reader: ResumableStreamReader,
        framer: StreamFramer,
        writeSize: Int,
        heartbeat: TimeAmount,
        metrics: StreamMetrics,
        slot: ReaderSlot?
    ) async throws -> ChannelStreamWriter? {
        try await channel.eventLoop.submit { () -> ChannelStreamWriter? in
            guard let handler = try? channel.pipeline.syncOperations.handler(type: StreamWriterHandler.self) else {
                return nil
            }
            let writer = ChannelStreamWriter(
                handler: handler, eventLoop: channel.eventLoop, reader: reader, framer: framer,
                writeSize: writeSize, heartbeat: heartbeat, metrics: metrics, slot: slot
            )
            guard handler.attach(writer) else {
                writer.stop(ChannelError.ioOnClosedChannel)
                return writer
            }
            writer.scheduleHeartbeat(at: writer.lastWrite + heartbeat)
            writer.pump()
            return writer
        }.get()
    }

    /// Returns once the body is written and the response ended; throws when the connection closed
    /// first, when the task is cancelled, or (raw text) when the stream did not complete and the
    /// body was broken off.
    func finished() async throws {
        try await withTaskCancellationHandler {
            try await done.futureResult.get()
        } onCancel: {
            eventLoop.execute { self.stop(CancellationError()) }
        }
    }

    /// Writes what the stream has while the connection can take it, in writes of at most
    /// `writeSize` bytes: a chunk larger than that goes out over several, so that a client that
    /// stops reading holds one write however large the stream's chunks are.
    func pump() {
        guard !ended else { return }
        waitingForText = false
        var sent = 0
        while handler.isWritable {
            if part == nil, queued.isEmpty {
                guard let poll = reader.poll(at: offset, maximumBytes: writeSize, notifying: self) else {
                    waitingForText = true
                    break
                }
                switch poll {
                case .chunks(let chunks):
                    queued = chunks[...]
                case .completed:
                    end(nil, sent: sent)
                    return
                case .failed(let error):
                    end(error, sent: sent)
                    return
                }
            }
            // The queued chunks' events, the last one maybe cut, to be continued in the next
            // write; in a buffer no larger than a write, chunk framing included (NIO rounds
            // capacities up to a power of two), or than they need when they are fewer.
            let needed = queued.reduce(part.map { $0.chunk.slice.utf8.count + 32 } ?? 0) { $0 + $1.slice.utf8.count + 32 }
            let room = max(writeSize - HTTPChunk.framing, 1)
            var buffer = handler.makeBody(capacity: min(needed, room))
            let limit = max(room - StreamFramer.overshoot, 1)
            while buffer.readableBytes < limit {
                guard var current = part ?? queued.popFirst().map(StreamFramer.ChunkPart.init) else { break }
                framer.write(&current, into: &buffer, limit: limit)
                guard current.isComplete else {
                    part = current
                    break
                }
                offset = current.chunk.offset
                part = nil
            }
            sent += buffer.readableBytes
            handler.write(buffer)
        }
        if sent > 0 {
            flush(sent)
        }
    }

    func streamChanged() {
        pump()
    }

    /// Ends the writer early: the caller's wait throws `error`.
    func stop(_ error: any Error) {
        guard !ended else { return }
        reader.stopNotifying(self)
        finish(.failure(error), ending: .closed)
    }

    /// Writes the stream's ending; the handler then flushes it with the response's end, or
    /// breaks the connection off.
    private func end(_ error: ResumableStreamError?, sent: Int) {
        var buffer = handler.makeBody(capacity: 64)
        let breaking = framer.writeEnding(error, at: offset, into: &buffer)
        let bytes = sent + buffer.readableBytes
        handler.write(buffer)
        if bytes > 0 { metrics.sent(bytes: bytes) }
        if let breaking {
            finish(.failure(breaking), ending: .breakOff)
        } else {
            finish(.success(()), ending: .end)
        }
    }

    private func finish(_ result: Result<Void, any Error>, ending: StreamWriterHandler.ResponseEnding) {
        ended = true
        heartbeatTimer?.cancel()
        heartbeatTimer = nil
        handler.detach(self, ending: ending)
        slot = nil
        done.completeWith(result)
    }

    private func flush(_ bytes: Int) {
        handler.flush()
        lastWrite = .now()
        if bytes > 0 { metrics.sent(bytes: bytes) }
    }

    /// One timer for the writer's whole life, rescheduled when it fires rather than at every
    /// write: a heartbeat goes out when the writer has waited for text for a whole interval since
    /// it last wrote. A writer waiting for its socket is not idle, and sends nothing.
    private func scheduleHeartbeat(at deadline: NIODeadline) {
        heartbeatTimer = eventLoop.scheduleTask(deadline: deadline) { self.heartbeatDue() }
    }

    private func heartbeatDue() {
        guard !ended else { return }
        let now = NIODeadline.now()
        let due = lastWrite + heartbeat
        if now >= due {
            if waitingForText {
                var buffer = handler.makeBody(capacity: 16)
                framer.writeHeartbeat(into: &buffer)
                let bytes = buffer.readableBytes
                handler.write(buffer)
                flush(bytes)
            }
            scheduleHeartbeat(at: now + heartbeat)
        } else {
            scheduleHeartbeat(at: due)
        }
    }
}
