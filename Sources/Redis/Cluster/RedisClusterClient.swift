import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

extension RedisConfiguration {
    /// The same settings, for another node of the cluster.
    func at(_ node: RedisClusterNode) -> RedisConfiguration {
        var configuration = self
        configuration.host = node.host
        configuration.port = node.port
        return configuration
    }
}

/// A Redis Cluster client: one pipelined ``RedisClient`` per master, each command sent to the
/// master of its key's slot.
///
/// The slot map comes from `CLUSTER SLOTS`, read from the seeds at connect and again whenever a
/// node answers `MOVED` or a node's connection fails. `ASK` (a slot being migrated) sends the
/// command once to the importing node, after `ASKING`, on the same write. A command without a key
/// (`PING`, `SCRIPT LOAD`, ...) goes to any master. Connections to nodes open when a command first
/// needs them and close when a refreshed map no longer names their node.
///
/// The decisions (which node, what a redirection means, when to give up) are ``ClusterRouting``'s
/// and ``ClusterSlotMap``'s; this class carries them out.
public final class RedisClusterClient: RedisClientProtocol {
    /// The first seed's configuration; every node is reached with it, at the node's own address.
    public let configuration: RedisConfiguration
    private let seeds: [RedisClusterNode]
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let clients: NodeConnections<RedisClient>

    private struct State {
        var map = ClusterSlotMap([])
        /// The map's refresh in flight, which every caller that wants one waits for.
        var refresh: EventLoopFuture<Void>?
    }

    private init(configuration: RedisConfiguration, seeds: [RedisClusterNode], eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.seeds = seeds
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.clients = NodeConnections(
            open: { node in
                RedisClient.connecting(configuration: configuration.at(node), eventLoop: eventLoopGroup.any(), logger: logger)
            },
            close: { await $0.close() }
        )
    }

    /// Connects to the cluster that `seeds` name (see ``ClusterSeeds``).
    public static func connect(
        seeds: ClusterSeeds,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "redis", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> RedisClusterClient {
        try await connect(configuration: seeds.configuration, seeds: seeds.nodes, eventLoopGroup: eventLoopGroup, logger: logger)
    }

    /// Reads the slot map from the first seed that answers; throws the last seed's error if none does.
    ///
    /// - Parameters:
    ///   - configuration: how to reach and authenticate with every node (its host and port are the
    ///     first seed's).
    ///   - seeds: further nodes to ask for the map if the first does not answer.
    public static func connect(
        configuration: RedisConfiguration,
        seeds: [RedisClusterNode] = [],
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "redis", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> RedisClusterClient {
        var allSeeds = [RedisClusterNode(host: configuration.host, port: configuration.port)]
        allSeeds += seeds.filter { !allSeeds.contains($0) }
        let client = RedisClusterClient(configuration: configuration, seeds: allSeeds, eventLoopGroup: eventLoopGroup, logger: logger)
        do {
            try await client.readMap()
        } catch {
            await client.close()
            throw error
        }
        return client
    }

    /// The slot map as the client knows it now.
    public var slotMap: ClusterSlotMap {
        state.withLockedValue { $0.map }
    }

    /// Sends the command to the master of its key's slot, following redirections.
    ///
    /// - Throws: ``RedisServerError`` when Redis answers with an error (a slot still redirected
    ///   after ``ClusterRouting/limit`` redirections included); ``RedisConnectionError`` when the
    ///   node's connection fails (the map is read again before this returns).
    nonisolated(nonsending) public func send(_ arguments: [RedisArgument]) async throws -> RedisReply {
        guard let slot = Self.slot(of: arguments) else {
            return try await send(arguments, to: anyNode(), asking: false)
        }
        return try await send(arguments, slot: slot)
    }

    nonisolated(nonsending) public func send(_ arguments: [RedisArgument], onNodeOf key: String) async throws -> RedisReply {
        try await send(arguments, slot: HashSlot.of(key))
    }

    nonisolated(nonsending) private func send(_ arguments: [RedisArgument], slot: Int) async throws -> RedisReply {
        var routing = ClusterRouting()
        var step = state.withLockedValue { routing.start(slot: slot, map: $0.map, anyNode: seeds[0]) }
        while true {
            switch step {
            case .send(let node, let asking):
                do {
                    return try await send(arguments, to: node, asking: asking)
                } catch let error as RedisServerError {
                    step = state.withLockedValue { routing.answered(error, map: &$0.map) }
                }
            case .refreshMapThenSend(let node):
                try? await refreshMap()
                step = .send(to: node, asking: false)
            case .fail(let error):
                throw error
            }
        }
    }

    /// Returns as soon as one master answers `PING`; throws the last error if none does. A
    /// cluster with one master down still serves the others' slots, so an instance that reaches
    /// any of them is ready.
    public func pingAnyMaster() async throws {
        let nodes = state.withLockedValue { $0.map.nodes.isEmpty ? Set(seeds) : $0.map.nodes }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in nodes {
                group.addTask { _ = try await self.send(["PING"], to: node, asking: false) }
            }
            var lastError: (any Error)?
            while let result = await group.nextResult() {
                switch result {
                case .success:
                    group.cancelAll()
                    return
                case .failure(let error):
                    lastError = error
                }
            }
            throw lastError ?? RedisConnectionError.closed
        }
    }

    /// The master that serves `slot`, as the map says.
    public func master(of slot: Int) -> RedisClusterNode? {
        state.withLockedValue { $0.map.master(of: slot) }
    }

    /// Reads the slot map again. Callers that ask while a refresh is under way wait for that one.
    public func refreshMap() async throws {
        try await refreshMap(askingLast: nil)
    }

    func refreshMap(askingLast suspect: RedisClusterNode?) async throws {
        let (future, promise) = state.withLockedValue { state -> (EventLoopFuture<Void>, EventLoopPromise<Void>?) in
            if let refresh = state.refresh { return (refresh, nil) }
            let promise = eventLoopGroup.any().makePromise(of: Void.self)
            state.refresh = promise.futureResult
            return (promise.futureResult, promise)
        }
        if let promise {
            do {
                try await readMap(askingLast: suspect)
                promise.succeed()
            } catch {
                promise.fail(error)
            }
            state.withLockedValue { $0.refresh = nil }
        }
        try await future.get()
    }

    /// Closes every node's connection; later commands fail with ``RedisConnectionError/closed``.
    public func close() async {
        await clients.closeAll()
    }

    /// Sends to one node. A node whose connection fails has the map read again: it may have
    /// failed over or left, and the next command should find the slot's new master.
    nonisolated(nonsending) private func send(_ arguments: [RedisArgument], to node: RedisClusterNode, asking: Bool) async throws -> RedisReply {
        do {
            return try await client(for: node).send(arguments, asking: asking)
        } catch let error as RedisConnectionError {
            // Asked of the other nodes first: this one may not answer at all.
            if error != .closed { try? await refreshMap(askingLast: node) }
            throw error
        }
    }

    private func anyNode() -> RedisClusterNode {
        state.withLockedValue { $0.map.nodes.first } ?? seeds[0]
    }

    /// The node's client, connecting first if there is none yet.
    nonisolated(nonsending) func client(for node: RedisClusterNode) async throws -> RedisClient {
        try await clients.connection(to: node)
    }

    /// Reads `CLUSTER SLOTS` from the map's nodes, then the seeds, until one answers; closes the
    /// connections of nodes the new map does not name.
    private func readMap(askingLast suspect: RedisClusterNode? = nil) async throws {
        let known = state.withLockedValue { Array($0.map.nodes) }
        var candidates = known + seeds.filter { !known.contains($0) }
        if let suspect, let index = candidates.firstIndex(of: suspect) {
            candidates.append(candidates.remove(at: index))
        }
        var lastError: any Error = RedisConnectionError.closed
        for node in candidates {
            do {
                let reply = try await client(for: node).send(["CLUSTER", "SLOTS"])
                let map = try ClusterSlotMap(slotsReply: reply, answeredBy: node)
                state.withLockedValue { $0.map = map }
                await clients.keep(only: map.nodes.union(seeds))
                logger.debug("read the cluster's slot map", metadata: ["masters": "\(map.nodes.count)", "complete": "\(map.isComplete)"])
                return
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    /// The slot a command's key (or shard channel) hashes to; `nil` for a command without one.
    static func slot(of arguments: [RedisArgument]) -> Int? {
        guard let name = arguments.first?.text?.uppercased() else { return nil }
        let position: Int
        switch name {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            // `EVALSHA sha numkeys key...`: the first key, when there is one.
            guard arguments.count > 3, let count = arguments[2].text.flatMap({ Int($0) }), count > 0 else { return nil }
            position = 3
        case "PING", "SCRIPT", "CLUSTER", "INFO", "CONFIG", "CLIENT", "PUBLISH", "FUNCTION", "DBSIZE", "FLUSHALL", "FLUSHDB":
            return nil
        default:
            position = 1
        }
        guard arguments.count > position else { return nil }
        return HashSlot.of(bytes: arguments[position].wireBytes)
    }
}
