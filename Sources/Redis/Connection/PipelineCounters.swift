import Synchronization

/// How a client's connection uses its pipeline, counted as batches go out.
public struct RedisPipelineStatistics: Sendable, Hashable {
    /// Writes to the socket, one per batch.
    public var writes: Int
    /// Commands in those writes.
    public var commands: Int
    /// The sum, over writes, of the commands in flight (sent, reply not yet received) just after
    /// each write: divided by `writes`, how deep the pipeline is when a batch goes out.
    public var inFlightAfterWrites: Int

    public init(writes: Int, commands: Int, inFlightAfterWrites: Int) {
        self.writes = writes
        self.commands = commands
        self.inFlightAfterWrites = inFlightAfterWrites
    }

    public var meanBatchSize: Double { writes == 0 ? 0 : Double(commands) / Double(writes) }
    public var meanInFlight: Double { writes == 0 ? 0 : Double(inFlightAfterWrites) / Double(writes) }

    /// What happened between `earlier` and this.
    public func since(_ earlier: RedisPipelineStatistics) -> RedisPipelineStatistics {
        RedisPipelineStatistics(
            writes: writes - earlier.writes,
            commands: commands - earlier.commands,
            inFlightAfterWrites: inFlightAfterWrites - earlier.inFlightAfterWrites
        )
    }
}

/// The counters behind ``RedisPipelineStatistics``: written on the event loop, read anywhere.
/// Relaxed atomics, one add each per batch, not per command.
final class PipelineCounters: Sendable {
    private let writes = Atomic<Int>(0)
    private let commands = Atomic<Int>(0)
    private let inFlight = Atomic<Int>(0)

    func recordWrite(commands count: Int, inFlight depth: Int) {
        writes.add(1, ordering: .relaxed)
        commands.add(count, ordering: .relaxed)
        inFlight.add(depth, ordering: .relaxed)
    }

    var statistics: RedisPipelineStatistics {
        RedisPipelineStatistics(
            writes: writes.load(ordering: .relaxed),
            commands: commands.load(ordering: .relaxed),
            inFlightAfterWrites: inFlight.load(ordering: .relaxed)
        )
    }
}
