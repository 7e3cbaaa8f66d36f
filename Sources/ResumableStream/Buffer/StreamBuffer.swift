import NIOCore
import Synchronization

/// One stream's text, append-only, shared by every reader of the stream in this process.
///
/// Readers are cursors (an offset), not queues: a reader takes the next chunks when it is ready for
/// them, so a slow reader lags without costing memory, and ten thousand readers cost ten thousand
/// offsets. Offsets are resolved by binary search over the cumulative lengths of the chunks.
///
/// The buffer is bounded: a chunk that would take it past its own limit, or the process past its
/// budget, is not stored; the stream ends there with an error that every reader sees.
final class StreamBuffer: Sendable {
    enum Outcome: Sendable, Equatable {
        case completed
        case failed(ResumableStreamError)
    }

    private struct State {
        /// Whole strings (a producer's chunks), or slices of the message they came in (a
        /// mirror's): no copy either way.
        var chunks: [Substring] = []
        /// `ends[i]` is the offset just after chunk `i`.
        var ends: [Int] = []
        var bytes = 0
        var outcome: Outcome?
        var waiters: [Int: CheckedContinuation<Wake, Never>] = [:]
        var nextWaiter = 0
        /// Readers that are told on their event loops instead of resumed (see ``ResumableStreamObserver``).
        var observers: [ObjectIdentifier: any ResumableStreamObserver] = [:]
        var released = false

        var length: Int { ends.last ?? 0 }
    }

    private let state = Mutex(State())
    private let limit: Int
    private let budget: MemoryBudget

    init(limit: Int, budget: MemoryBudget) {
        self.limit = limit
        self.budget = budget
    }

    /// The stream's length so far, in offset units.
    var length: Int { state.withLock { $0.length } }

    /// `nil` while the stream is live.
    var outcome: Outcome? { state.withLock { $0.outcome } }

    var bytes: Int { state.withLock { $0.bytes } }

    /// Appends a chunk and wakes the readers waiting for it.
    ///
    /// - Throws: when the chunk does not fit; the buffer is then failed with that error.
    func append(_ chunk: String) throws(ResumableStreamError) {
        let size = chunk.utf8.count
        let units = TextUnits.count(chunk)
        try appending { state in Self.append(chunk[...], size: size, units: units, to: &state, limit: limit, budget: budget) }
    }

    /// Appends chunks, in order, under one lock, and wakes the readers waiting for them once.
    /// Empty chunks are skipped.
    ///
    /// - Throws: when a chunk does not fit; the ones before it are kept, and the buffer is then
    ///   failed with that error.
    func append(contentsOf chunks: some Collection<Substring>) throws(ResumableStreamError) {
        // Measured outside the lock: readers wait for it, not for this.
        let sizes = chunks.map { ($0.utf8.count, TextUnits.count($0)) }
        try appending { state in
            for (chunk, (size, units)) in zip(chunks, sizes) {
                if let failure = Self.append(chunk, size: size, units: units, to: &state, limit: limit, budget: budget) {
                    return failure
                }
            }
            return nil
        }
    }

    /// Runs `body` under the lock on a live buffer, fails the buffer with the error it returns,
    /// then wakes the waiting readers.
    private func appending(_ body: (inout State) -> ResumableStreamError?) throws(ResumableStreamError) {
        let (waiters, failure) = state.withLock { state -> (Waiters, ResumableStreamError?) in
            guard state.outcome == nil else { return (Waiters(), nil) }
            let failure = body(&state)
            if let failure {
                state.outcome = .failed(failure)
            }
            return (Self.takeWaiters(&state), failure)
        }
        waiters.wake()
        if let failure { throw failure }
    }

    /// One chunk into the state, or the limit it would break.
    private static func append(
        _ chunk: Substring,
        size: Int,
        units: Int,
        to state: inout State,
        limit: Int,
        budget: MemoryBudget
    ) -> ResumableStreamError? {
        guard size > 0 else { return nil }
        if state.bytes + size > limit {
            return .streamBufferLimitExceeded(limit: limit)
        }
        if !state.released, !budget.reserve(size) {
            return .processBufferLimitExceeded(limit: budget.limit)
        }
        state.chunks.append(chunk)
        state.ends.append(state.length + units)
        state.bytes += size
        return nil
    }

    /// Ends the stream; readers read what is buffered, then see `outcome`. Later calls change nothing.
    func finish(_ outcome: Outcome) {
        let waiters = state.withLock { state -> Waiters in
            guard state.outcome == nil else { return Waiters() }
            state.outcome = outcome
            return Self.takeWaiters(&state)
        }
        waiters.wake()
    }

    /// Gives the buffer's bytes back to the process budget; the text stays readable by the readers
    /// that still hold the buffer.
    func release() {
        let bytes = state.withLock { state -> Int in
            guard !state.released else { return 0 }
            state.released = true
            return state.bytes
        }
        budget.release(bytes)
    }

    enum Read: Equatable {
        /// Text from the offset: whole chunks (the first may be a suffix), at most `maximumBytes`
        /// together unless a single chunk is larger, and the offset just after them. Readers move
        /// to `end`, not by the length of the text: an offset inside a surrogate pair starts the
        /// text after the pair.
        case text([Substring], end: Int)
        case end(Outcome)

        /// The text's pieces, `nil` at the end.
        var pieces: [Substring]? {
            if case .text(let pieces, _) = self { return pieces }
            return nil
        }
    }

    /// What can be read at `offset` now, without waiting: `nil` when the reader must wait.
    func readNow(at offset: Int, maximumBytes: Int = .max, maximumChunks: Int = .max) -> Read? {
        state.withLock { Self.read(in: $0, at: offset, maximumBytes: maximumBytes, maximumChunks: maximumChunks) }
    }

    /// Waits until there is text at `offset` or the stream has ended.
    ///
    /// An offset past the end waits while the stream is live, and fails once it has finished.
    func read(at offset: Int, maximumBytes: Int = .max, maximumChunks: Int = .max) async throws -> Read {
        guard let read = try await read(at: offset, maximumBytes: maximumBytes, maximumChunks: maximumChunks, idleTimer: nil) else {
            preconditionFailure("without an idle timer, the wait ends only with a read")
        }
        return read
    }

    /// Waits as ``read(at:maximumBytes:maximumChunks:)`` does, or until the reader's idle timer
    /// says it has waited for its interval: `nil` then.
    func read(
        at offset: Int,
        maximumBytes: Int = .max,
        maximumChunks: Int = .max,
        idleTimer: IdleTimer?
    ) async throws -> Read? {
        while true {
            try Task.checkCancellation()
            let id = state.withLock { state in
                state.nextWaiter += 1
                return state.nextWaiter
            }
            let wake: Wake = await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
                    let read = state.withLock { state -> Read? in
                        if let read = Self.read(in: state, at: offset, maximumBytes: maximumBytes, maximumChunks: maximumChunks) {
                            return read
                        }
                        // Cancelled before this waiter was stored: the handler found nothing to wake.
                        guard !Task.isCancelled else { return .end(.completed) }
                        state.waiters[id] = continuation
                        idleTimer?.waiting(on: self, id: id)
                        return nil
                    }
                    if let read {
                        continuation.resume(returning: .ready(read))
                    }
                }
            } onCancel: {
                let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
                waiter?.resume(returning: .recheck)
            }
            if case .ready = wake {
                idleTimer?.stoppedWaiting(gotText: true)
            } else {
                idleTimer?.stoppedWaiting(gotText: false)
            }
            try Task.checkCancellation()
            switch wake {
            case .ready(let read): return read
            case .idle: return nil
            case .recheck: continue
            }
        }
    }

    /// Ends a reader's wait as idle (its ``IdleTimer`` fired); nothing if it is no longer waiting.
    func wakeIdle(_ id: Int) {
        state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: .idle)
    }

    /// How a waiting reader is woken.
    private enum Wake {
        case ready(Read)
        /// Something changed: read again.
        case recheck
        /// The idle timeout passed.
        case idle
    }

    private static func read(in state: State, at requested: Int, maximumBytes: Int, maximumChunks: Int) -> Read? {
        let offset = max(requested, 0)
        let length = state.length
        if offset >= length {
            switch state.outcome {
            case nil: return nil
            case .completed where offset > length: return .end(.failed(.offsetBeyondEnd(offset: offset, length: length)))
            case let outcome?: return .end(outcome)
            }
        }
        let low = firstChunk(in: state, endingAfter: offset)
        let start = low == 0 ? 0 : state.ends[low - 1]
        let first = TextUnits.dropping(offset - start, from: state.chunks[low])
        guard !first.isEmpty else {
            // The offset was inside a surrogate pair that ends the chunk: read from the next one.
            return read(in: state, at: state.ends[low], maximumBytes: maximumBytes, maximumChunks: maximumChunks)
        }
        let rest = wholeChunks(in: state, from: low + 1, maximumBytes: maximumBytes - first.utf8.count, maximumChunks: maximumChunks - 1)
        return .text([first] + state.chunks[rest], end: state.ends[rest.upperBound - 1])
    }

    /// The index of the first chunk that ends after `offset`, which is less than the length.
    private static func firstChunk(in state: State, endingAfter offset: Int) -> Int {
        var low = 0
        var high = state.ends.count - 1
        while low < high {
            let middle = (low + high) / 2
            if state.ends[middle] <= offset { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The chunks from `index` on that fit, together, in `maximumBytes`, at most `maximumChunks`.
    private static func wholeChunks(in state: State, from index: Int, maximumBytes: Int, maximumChunks: Int = .max) -> Range<Int> {
        var end = index
        var bytes = 0
        while end < state.chunks.count, end - index < maximumChunks {
            let size = state.chunks[end].utf8.count
            guard bytes + size <= maximumBytes else { break }
            bytes += size
            end += 1
        }
        return index..<end
    }

    /// Whether a chunk starts at `offset`, or it is the buffer's length.
    func startsChunk(at offset: Int) -> Bool {
        state.withLock { state in
            guard offset > 0 else { return offset == 0 }
            guard offset < state.length else { return offset == state.length }
            let index = Self.firstChunk(in: state, endingAfter: offset)
            return index > 0 && state.ends[index - 1] == offset
        }
    }

    /// The whole chunks that start at `offset` (the end of a chunk), each with the offset after it,
    /// up to `maximumBytes` together: what a reader that has caught up takes in one go, under one
    /// lock. Empty when there is none, or when `offset` is not where a chunk starts.
    func chunksNow(from offset: Int, maximumBytes: Int) -> [ResumableStreamChunk] {
        state.withLock { Self.chunks(in: $0, startingAt: offset, maximumBytes: maximumBytes) }
    }

    /// ``chunksNow(from:maximumBytes:)`` under the lock already held.
    private static func chunks(in state: State, startingAt offset: Int, maximumBytes: Int) -> [ResumableStreamChunk] {
        guard offset >= 0, offset < state.length else { return [] }
        let index = firstChunk(in: state, endingAfter: offset)
        guard (index == 0 ? 0 : state.ends[index - 1]) == offset else { return [] }
        return wholeChunks(in: state, from: index, maximumBytes: maximumBytes).map {
            ResumableStreamChunk(state.chunks[$0], offset: state.ends[$0])
        }
    }

    /// What a reader that is told rather than resumed can take at `offset` now: the chunks there
    /// (the first may be the end of one), up to `maximumBytes` of text unless the first is larger,
    /// each with the offset after it; or the end. `nil` when there is nothing yet: `observer` is
    /// then told, once, when there is (a later call replaces that registration).
    func poll(at offset: Int, maximumBytes: Int, notifying observer: any ResumableStreamObserver) -> ResumableStreamPoll? {
        state.withLock { state in
            guard let read = Self.read(in: state, at: offset, maximumBytes: maximumBytes, maximumChunks: 1) else {
                state.observers[ObjectIdentifier(observer)] = observer
                return nil
            }
            state.observers[ObjectIdentifier(observer)] = nil
            switch read {
            case .end(.completed): return .completed
            case .end(.failed(let error)): return .failed(error)
            case .text(let pieces, let end):
                // The first piece may start inside its chunk; the chunks after it are whole, as an
                // async reader takes them (``ResumableStreamReader/AsyncIterator/next(maximumBytes:idleTimer:)``).
                let first = ResumableStreamChunk(pieces[0], offset: end)
                let size = pieces[0].utf8.count
                guard size < maximumBytes else { return .chunks([first]) }
                return .chunks([first] + Self.chunks(in: state, startingAt: end, maximumBytes: maximumBytes - size))
            }
        }
    }

    /// Forgets `observer`'s registration, if it has one.
    func stopNotifying(_ observer: any ResumableStreamObserver) {
        _ = state.withLock { $0.observers.removeValue(forKey: ObjectIdentifier(observer)) }
    }

    /// The readers to wake after a change, taken out of the state under its lock and woken after it.
    private struct Waiters {
        var continuations: [CheckedContinuation<Wake, Never>] = []
        var observers: [any ResumableStreamObserver] = []

        func wake() {
            continuations.forEach { $0.resume(returning: .recheck) }
            guard !observers.isEmpty else { return }
            // One job per event loop for all of its observers, not one per observer: a loop with a
            // thousand followers of this stream runs them in one go.
            var loops: [(loop: any EventLoop, observers: [any ResumableStreamObserver])] = []
            for observer in observers {
                if let index = loops.firstIndex(where: { $0.loop === observer.eventLoop }) {
                    loops[index].observers.append(observer)
                } else {
                    loops.append((observer.eventLoop, [observer]))
                }
            }
            for (loop, observers) in loops {
                loop.execute { observers.forEach { $0.streamChanged() } }
            }
        }
    }

    private static func takeWaiters(_ state: inout State) -> Waiters {
        var waiters = Waiters()
        if !state.waiters.isEmpty {
            waiters.continuations = Array(state.waiters.values)
            state.waiters.removeAll(keepingCapacity: true)
        }
        if !state.observers.isEmpty {
            waiters.observers = Array(state.observers.values)
            state.observers.removeAll(keepingCapacity: true)
        }
        return waiters
    }
}

/// A reader that is told, on its event loop, when its stream has more or has ended, instead of
/// waiting in a task: a connection's writer that runs on the connection's own loop. Told once per
/// registration (``ResumableStreamReader/poll(at:maximumBytes:notifying:)``); the observers of one
/// loop are told in one job.
public protocol ResumableStreamObserver: AnyObject, Sendable {
    /// The loop ``streamChanged()`` is called on.
    var eventLoop: any EventLoop { get }
    /// The stream has more than when the observer last polled, or has ended: poll again.
    func streamChanged()
}

/// What ``ResumableStreamReader/poll(at:maximumBytes:notifying:)`` finds.
public enum ResumableStreamPoll: Sendable, Hashable {
    /// One or more chunks, in order, each with the offset after it.
    case chunks([ResumableStreamChunk])
    /// The stream completed at the offset polled.
    case completed
    /// The stream failed or was cancelled (``ResumableStreamError/cancelled``); the reader has
    /// what came before.
    case failed(ResumableStreamError)
}
