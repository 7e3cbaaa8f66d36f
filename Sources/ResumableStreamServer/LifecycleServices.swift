import Redis
import ResumableStream
import ServiceLifecycle

/// Drains the coordinator at graceful shutdown: no new streams (and `/readyz` says `503`) at once,
/// running producers get until the drain timeout, then their readers end. Runs after the HTTP
/// server in the service group, so it is told first, and the server closes its listener only once
/// it returns: after the drain and after the shutdown delay, whichever ends later, so that a load
/// balancer has the delay to see the instance go even when nothing is left to drain.
struct StreamDrainService: Service {
    let context: ResumableStreamContext
    let drainTimeout: Duration
    let shutdownDelay: Duration

    func run() async throws {
        // Returns at graceful shutdown, or throws at cancellation (then there is nothing to drain
        // for: the whole process is going).
        try await gracefulShutdown()
        await withDiscardingTaskGroup { group in
            group.addTask { await context.shutdown(drainTimeout: drainTimeout) }
            // Cut short only when the group cancels what is left of the shutdown.
            group.addTask { try? await Task.sleep(for: shutdownDelay) }
        }
    }
}

/// Holds the Redis connections open until the services that use them have stopped.
struct RedisConnectionsService: Service {
    let close: @Sendable () async -> Void

    func run() async throws {
        try? await gracefulShutdown()
        await close()
    }
}
