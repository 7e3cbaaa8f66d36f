import NIOConcurrencyHelpers
import NIOCore

/// One connection per cluster node, opened by the first caller that needs it: callers that come
/// while it opens wait for the same attempt (a thousand streams created at once open one
/// connection per node, not a thousand). A failed attempt is forgotten, so the next caller tries
/// again.
final class NodeConnections<Connection: Sendable>: Sendable {
    private struct State {
        var connections: [RedisClusterNode: EventLoopFuture<Connection>] = [:]
        var isClosed = false
    }

    private let state = NIOLockedValueBox(State())
    private let open: @Sendable (RedisClusterNode) -> EventLoopFuture<Connection>
    private let close: @Sendable (Connection) async -> Void

    init(
        open: @escaping @Sendable (RedisClusterNode) -> EventLoopFuture<Connection>,
        close: @escaping @Sendable (Connection) async -> Void
    ) {
        self.open = open
        self.close = close
    }

    /// The node's connection, opening it if there is none.
    func connection(to node: RedisClusterNode) async throws -> Connection {
        let future = try state.withLockedValue { state -> EventLoopFuture<Connection> in
            guard !state.isClosed else { throw RedisConnectionError.closed }
            if let existing = state.connections[node] { return existing }
            let opening = open(node)
            state.connections[node] = opening
            return opening
        }
        do {
            return try await future.get()
        } catch {
            state.withLockedValue { state in
                if state.connections[node] === future { state.connections[node] = nil }
            }
            throw error
        }
    }

    /// Closes the connections of nodes not in `nodes` (they left the cluster, or serve no slot).
    func keep(only nodes: Set<RedisClusterNode>) async {
        let gone = state.withLockedValue { state -> [EventLoopFuture<Connection>] in
            let gone = state.connections.filter { !nodes.contains($0.key) }
            for node in gone.keys { state.connections[node] = nil }
            return Array(gone.values)
        }
        await close(gone)
    }

    /// Closes every connection; later callers get ``RedisConnectionError/closed``.
    func closeAll() async {
        let all = state.withLockedValue { state in
            state.isClosed = true
            defer { state.connections = [:] }
            return Array(state.connections.values)
        }
        await close(all)
    }

    private func close(_ futures: [EventLoopFuture<Connection>]) async {
        for future in futures {
            if let connection = try? await future.get() {
                await close(connection)
            }
        }
    }
}
