import Redis
import ResumableStream
import ServiceLifecycle

/// Drains the coordinator at graceful shutdown: no new streams, running producers get until the
/// drain timeout, then their readers end. Runs after the HTTP server in the service group, so it
/// is told first and the server stops only once the streams have ended.
struct StreamDrainService: Service {
    let context: ResumableStreamContext
    let drainTimeout: Duration

    func run() async throws {
        // Returns at graceful shutdown, or throws at cancellation (then there is nothing to drain
        // for: the whole process is going).
        try await gracefulShutdown()
        await context.shutdown(drainTimeout: drainTimeout)
    }
}

/// Holds the Redis connections open until the services that use them have stopped.
struct RedisConnectionsService: Service {
    let client: RedisClient
    let subscriber: RedisSubscriber

    func run() async throws {
        try? await gracefulShutdown()
        await subscriber.close()
        await client.close()
    }
}
