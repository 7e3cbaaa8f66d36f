import Foundation
import Redis
import Synchronization

/// A Redis Cluster of one test's own: three masters (by default) and no replicas, on loopback and
/// free ports, password-protected, no persistence, formed with `redis-cli --cluster create`. For
/// the cluster client's routing against a real cluster: redirections while a slot migrates, a
/// master that stops answering (paused), the slot map as `CLUSTER SLOTS` gives it.
///
/// The nodes never outlive the test process: besides ``stop()``, a watchdog shell kills them (and
/// removes their directory) once the test process's end of a pipe closes, however it ends.
public final class PrivateRedisCluster: Sendable {
    public struct Node: Sendable {
        public let port: Int
        /// `redis://:password@127.0.0.1:port`
        public let url: String
        /// The node's ID (`CLUSTER MYID`), as `CLUSTER SETSLOT` and `CLUSTER NODES` name it.
        public let id: String
    }

    /// The masters in slot order: node 0 serves the lowest slots (0-5460 of three), and so on.
    public let nodes: [Node]
    public let password: String
    /// The nodes' logs and cluster config files.
    public let directory: URL
    private let state: Mutex<State>

    private struct State {
        var processes: [ChildProcess]
        var watchdog: ChildProcess
        /// The write end of the watchdog's pipe: it closes when the test process ends.
        var lifeline: FileHandle
        /// Replicas added later, each with a watchdog of its own.
        var replicas: [(process: ChildProcess, watchdog: ChildProcess, lifeline: FileHandle)] = []
        var stopped = false
    }

    /// Every node, in the seed-list form the server accepts:
    /// `redis://:password@127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`.
    public var seedsURL: String {
        "redis://:\(password)@" + nodes.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
    }

    /// How long a node may not answer before the others count it failed.
    public let nodeTimeout: Duration

    private init(nodes: [Node], password: String, directory: URL, nodeTimeout: Duration, state: State) {
        self.nodes = nodes
        self.password = password
        self.directory = directory
        self.nodeTimeout = nodeTimeout
        self.state = Mutex(state)
    }

    /// The longest a cluster may take to start and agree on its slots.
    private static let startTimeout = Duration.seconds(20)

    /// Starts `masters` redis-servers in cluster mode, forms a cluster of them with `redis-cli
    /// --cluster create` (slots split evenly, in node order) and waits until every node says
    /// `cluster_state:ok` and knows a master for every slot.
    ///
    /// - Parameter nodeTimeout: `cluster-node-timeout`: how long a master may not answer before the
    ///   others count it failed, and a replica of it (see ``addReplica(of:)``) takes over.
    public static func start(masters: Int = 3, nodeTimeout: Duration = .seconds(15)) async throws -> PrivateRedisCluster {
        let deadline = ContinuousClock.now + startTimeout
        let password = "cluster-\(UUID().uuidString.prefix(8).lowercased())"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-cluster-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        var launched: [(port: Int, process: ChildProcess)] = []
        var watchdog: (process: ChildProcess, lifeline: FileHandle)?
        do {
            for _ in 0..<masters {
                launched.append(try await launchNode(password: password, directory: directory, nodeTimeout: nodeTimeout))
            }
            watchdog = try startWatchdog(killing: launched.map { $0.process.pid }, removing: directory)
            let ports = launched.map(\.port)

            let output = directory.appendingPathComponent("cluster-create.log")
            let status = try await run(
                ["redis-cli", "--cluster", "create"] + ports.map { "127.0.0.1:\($0)" } + ["--cluster-replicas", "0", "--cluster-yes"],
                environment: ["REDISCLI_AUTH": password],
                output: output,
                deadline: deadline
            )
            guard status == 0 else {
                throw StartFailed(reason: "redis-cli --cluster create exited with \(status)", directory: directory, ports: ports)
            }
            let nodes = try await waitUntilFormed(ports: ports, password: password, deadline: deadline, directory: directory)
            guard let watchdog else { throw StartFailed(reason: "no watchdog", directory: directory, ports: ports) }
            // The processes in the nodes' (slot) order.
            let processes = nodes.compactMap { node in launched.first { $0.port == node.port }?.process }
            return PrivateRedisCluster(
                nodes: nodes,
                password: password,
                directory: directory,
                nodeTimeout: nodeTimeout,
                state: State(processes: processes, watchdog: watchdog.process, lifeline: watchdog.lifeline)
            )
        } catch {
            if let watchdog {
                watchdog.process.killAndReap()
                try? watchdog.lifeline.close()
            }
            for node in launched { node.process.killAndReap() }
            // The error carries the logs; the directory goes with the nodes.
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// Starts one node on a free port (a port whose cluster bus port, 10000 above, is free too).
    private static func launchNode(password: String, directory: URL, nodeTimeout: Duration) async throws -> (port: Int, process: ChildProcess) {
        for _ in 0..<20 {
            // The cluster bus listens 10000 above the port.
            let port = Int.random(in: 20_000..<55_000)
            let arguments = [
                "--port", "\(port)",
                "--cluster-enabled", "yes",
                "--cluster-config-file", directory.appendingPathComponent("nodes-\(port).conf").path,
                "--cluster-node-timeout", "\(nodeTimeout.components.seconds * 1_000 + nodeTimeout.components.attoseconds / 1_000_000_000_000_000)",
                "--cluster-require-full-coverage", "no",
                "--requirepass", password,
                "--masterauth", password,
                "--dir", directory.path,
                "--logfile", directory.appendingPathComponent("\(port).log").path,
                "--daemonize", "no",
            ]
            let ready = RedisConfiguration(port: port, password: password)
            if let process = try await PrivateRedisServer.launch(arguments: arguments, ready: { await PrivateRedisServer.answers(ready) }) {
                return (port, process)
            }
        }
        throw StartFailed(reason: "could not start a cluster node on a free port", directory: directory, ports: [])
    }

    /// A shell that waits for its descriptor 3 to close, then kills `pids` and removes
    /// `directory`. That descriptor is a pipe whose only writer is this process (close-on-exec keeps
    /// the write end out of every other child), so it closes when the test process ends, normally
    /// or not.
    private static func startWatchdog(killing pids: [pid_t], removing directory: URL) throws -> (process: ChildProcess, lifeline: FileHandle) {
        let pipe = Pipe()
        for end in [pipe.fileHandleForReading, pipe.fileHandleForWriting] {
            _ = fcntl(end.fileDescriptor, F_SETFD, FD_CLOEXEC)
        }
        let script = """
            trap '' INT HUP TERM
            while read -r _ <&3; do :; done
            directory=$1
            shift
            kill -KILL "$@" 2>/dev/null
            rm -rf "$directory"
            """
        let process = try ChildProcess.spawn(
            name: "redis-cluster-watchdog", executable: "/bin/sh",
            arguments: ["-c", script, "redis-cluster-watchdog", directory.path] + pids.map { String($0) },
            logPath: "/dev/null",
            descriptors: [pipe.fileHandleForReading.fileDescriptor]
        )
        // The child has its copy; this process keeps only the write end.
        try? pipe.fileHandleForReading.close()
        return (process, pipe.fileHandleForWriting)
    }

    /// Runs a command to its end (killed at `deadline`), its output and errors in `output`.
    /// Waits on the termination handler: `waitUntilExit()` does not return on a concurrency thread
    /// on Linux.
    private static func run(_ arguments: [String], environment: [String: String], output: URL, deadline: ContinuousClock.Instant) async throws -> Int32 {
        let process = try ChildProcess.spawn(
            name: arguments.first ?? "command", executable: "/usr/bin/env", arguments: arguments,
            logPath: output.path, environment: environment.map { "\($0.key)=\($0.value)" }
        )
        var ended = await process.termination(within: deadline - ContinuousClock.now)
        if ended == nil {
            // The deadline: the command is killed, and its status is the signal's.
            process.killAndReap()
            ended = process.poll()
        }
        switch ended {
        case .exited(let status): return status
        case .signalled(let signal): return 128 + signal
        case nil: return -1
        }
    }

    /// Waits until every node says `cluster_state:ok` and its `CLUSTER SLOTS` gives a master for
    /// every slot, one of `ports` each; the nodes in slot order, with their IDs.
    private static func waitUntilFormed(ports: [Int], password: String, deadline: ContinuousClock.Instant, directory: URL) async throws -> [Node] {
        try await withAdminClients(ports: ports, password: password) { clients in
            try await waitUntilFormed(clients: clients, ports: ports, password: password, deadline: deadline, directory: directory)
        }
    }

    private static func waitUntilFormed(
        clients: [RedisClient],
        ports: [Int],
        password: String,
        deadline: ContinuousClock.Instant,
        directory: URL
    ) async throws -> [Node] {
        var formed: [Node]?
        _ = try await poll(until: deadline) {
            formed = try await formedNodes(clients: clients, ports: ports, password: password, directory: directory)
            return formed != nil
        }
        guard let formed else {
            throw StartFailed(reason: "the cluster did not agree on its slots within \(startTimeout)", directory: directory, ports: ports)
        }
        return formed
    }

    /// The nodes in slot order with their IDs, once every node says `cluster_state:ok` and knows a
    /// master of every slot among `ports`; `nil` before.
    private static func formedNodes(clients: [RedisClient], ports: [Int], password: String, directory: URL) async throws -> [Node]? {
        var maps: [ClusterSlotMap] = []
        for (client, port) in zip(clients, ports) {
            guard let info = try? await client.send("CLUSTER", "INFO").string, info.contains("cluster_state:ok"),
                let reply = try? await client.send("CLUSTER", "SLOTS"),
                let map = try? ClusterSlotMap(slotsReply: reply, answeredBy: RedisClusterNode(host: "127.0.0.1", port: port)),
                map.isComplete, map.nodes.map(\.port).sorted() == ports.sorted()
            else { return nil }
            maps.append(map)
        }
        guard let map = maps.first else { return nil }
        // Slot order: by the first slot each master serves.
        let first = Dictionary(uniqueKeysWithValues: ports.map { port in
            (port, (0..<HashSlot.count).first { map.master(of: $0)?.port == port } ?? HashSlot.count)
        })
        var nodes: [Node] = []
        for (client, port) in zip(clients, ports) {
            guard let id = try await client.send("CLUSTER", "MYID").string else {
                throw StartFailed(reason: "CLUSTER MYID gave no ID", directory: directory, ports: ports)
            }
            nodes.append(Node(port: port, url: "redis://:\(password)@127.0.0.1:\(port)", id: id))
        }
        return nodes.sorted { first[$0.port, default: 0] < first[$1.port, default: 0] }
    }

    /// For the cluster's own checks and moves: quick to give up on a node that does not answer.
    private static func adminConfiguration(port: Int, password: String) -> RedisConfiguration {
        RedisConfiguration(port: port, password: password, connectTimeout: .seconds(2), commandTimeout: .seconds(5))
    }

    /// Kills every node (SIGKILL: nothing to save) and removes the directory; again, it does nothing.
    public func stop() {
        let state = state.withLock { state -> State? in
            guard !state.stopped else { return nil }
            state.stopped = true
            return state
        }
        guard let state else { return }
        // The watchdog first: it must not kill the nodes' process IDs once they are reused.
        state.watchdog.killAndReap()
        for replica in state.replicas { replica.watchdog.killAndReap() }
        for process in state.processes + state.replicas.map(\.process) { process.killAndReap() }
        try? state.lifeline.close()
        for replica in state.replicas { try? replica.lifeline.close() }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Pauses a node (SIGSTOP): its connections stay open and nothing is answered, not even the
    /// cluster bus.
    public func pause(node: Int) {
        signal(node: node, SIGSTOP)
    }

    /// Lets a paused node go on (SIGCONT).
    public func resume(node: Int) {
        signal(node: node, SIGCONT)
    }

    /// Kills a master (SIGKILL), as a crash would: a replica of it takes over after the node timeout.
    public func crash(node: Int) {
        signal(node: node, SIGKILL)
    }

    /// Adds a replica of master `master` (`redis-cli --cluster add-node --cluster-slave`) and
    /// waits until the master sees it in sync. Returns the replica's port.
    public func addReplica(of master: Int) async throws -> Int {
        let deadline = ContinuousClock.now + Self.startTimeout
        let replica = try await Self.launchNode(password: password, directory: directory, nodeTimeout: nodeTimeout)
        let watchdog: (process: ChildProcess, lifeline: FileHandle)
        do {
            watchdog = try Self.startWatchdog(killing: [replica.process.pid], removing: directory)
        } catch {
            replica.process.killAndReap()
            throw error
        }
        let stopped = state.withLock { state in
            if !state.stopped { state.replicas.append((replica.process, watchdog.process, watchdog.lifeline)) }
            return state.stopped
        }
        guard !stopped else {
            replica.process.killAndReap()
            throw ClusterError(message: "the cluster was stopped")
        }
        let status = try await Self.run(
            ["redis-cli", "--cluster", "add-node", "127.0.0.1:\(replica.port)", "127.0.0.1:\(nodes[master].port)",
             "--cluster-slave", "--cluster-master-id", nodes[master].id],
            environment: ["REDISCLI_AUTH": password],
            output: directory.appendingPathComponent("add-node-\(replica.port).log"),
            deadline: deadline
        )
        guard status == 0 else {
            throw StartFailed(reason: "redis-cli --cluster add-node exited with \(status)", directory: directory, ports: [replica.port])
        }
        let inSync = try await poll(until: deadline) {
            let replication = try await withAdminClient(master) { try await $0.send("INFO", "replication").string } ?? ""
            return replication.contains("port=\(replica.port),state=online")
        }
        guard inSync else {
            throw StartFailed(reason: "the replica on \(replica.port) did not come in sync", directory: directory, ports: [replica.port])
        }
        return replica.port
    }

    private func signal(node: Int, _ signal: Int32) {
        // Nothing once stopped: the process ID may belong to another process by then.
        guard let process = state.withLock({ $0.stopped ? nil : $0.processes[node] }) else { return }
        process.signal(signal)
    }

    /// A configuration for one node, to adjust (timeouts, a client name) before connecting.
    public func configuration(node: Int) throws -> RedisConfiguration {
        try RedisConfiguration(url: nodes[node].url)
    }

    /// A plain client to one node (no cluster routing: it gets MOVED and ASK as they are). The
    /// caller closes it.
    public func client(node: Int) async throws -> RedisClient {
        try await RedisClient.connect(configuration: configuration(node: node))
    }

    /// The index of the master that serves `slot`, from `CLUSTER SLOTS`.
    public func node(servingSlot slot: Int) async throws -> Int {
        try owner(of: slot, in: await slotMap())
    }

    /// The slot map, as `CLUSTER SLOTS` gives it: asked of the nodes in turn, skipping any that
    /// does not answer (a paused one). Read it once to place many slots (``owner(of:in:)``).
    public func slotMap() async throws -> ClusterSlotMap {
        var unanswered: (any Error)?
        for (index, node) in nodes.enumerated() {
            let reply: RedisReply
            do {
                reply = try await withAdminClient(index) { try await $0.send("CLUSTER", "SLOTS") }
            } catch let error as RedisConnectionError {
                unanswered = error
                continue
            }
            return try ClusterSlotMap(slotsReply: reply, answeredBy: RedisClusterNode(host: "127.0.0.1", port: node.port))
        }
        throw unanswered ?? ClusterError(message: "no node to ask")
    }

    /// The index of the master that serves `slot` in `map`.
    public func owner(of slot: Int, in map: ClusterSlotMap) throws -> Int {
        guard let master = map.master(of: slot), let owner = nodes.firstIndex(where: { $0.port == master.port }) else {
            throw ClusterError(message: "no master of this cluster serves slot \(slot)")
        }
        return owner
    }

    /// Moves `slot` to master `target` as `redis-cli --cluster reshard` does: `CLUSTER SETSLOT
    /// IMPORTING` on the target and `MIGRATING` on the source, then `whileMigrating` (a test acts
    /// mid-migration: the source answers ASK for keys it no longer has), then every key moves with
    /// `MIGRATE`, and `CLUSTER SETSLOT NODE` names the target on the target, the source and every
    /// other master.
    public func migrate(slot: Int, to target: Int, whileMigrating: @Sendable () async throws -> Void = {}) async throws {
        let source = try await node(servingSlot: slot)
        guard source != target else { throw ClusterError(message: "node \(target) serves slot \(slot) already") }
        try await Self.withAdminClients(ports: nodes.map(\.port), password: password) { clients in
            _ = try await clients[target].send("CLUSTER", "SETSLOT", .integer(slot), "IMPORTING", .string(nodes[source].id))
            _ = try await clients[source].send("CLUSTER", "SETSLOT", .integer(slot), "MIGRATING", .string(nodes[target].id))
            try await whileMigrating()
            while true {
                let reply = try await clients[source].send("CLUSTER", "GETKEYSINSLOT", .integer(slot), .integer(100))
                guard let keys = reply.array else { throw ClusterError(message: "CLUSTER GETKEYSINSLOT answered \(reply)") }
                if keys.isEmpty { break }
                var migrate: [RedisArgument] = [
                    "MIGRATE", "127.0.0.1", .integer(nodes[target].port), "", 0, 5_000, "AUTH", .string(password), "KEYS",
                ]
                for key in keys {
                    guard let bytes = key.bytes else { throw ClusterError(message: "CLUSTER GETKEYSINSLOT answered a key \(key)") }
                    migrate.append(.bytes(bytes))
                }
                _ = try await clients[source].send(migrate)
            }
            let others = nodes.indices.filter { $0 != source && $0 != target }
            for index in [target, source] + others {
                _ = try await clients[index].send("CLUSTER", "SETSLOT", .integer(slot), "NODE", .string(nodes[target].id))
            }
        }
    }

    /// Runs `body` with a client to each of `ports`, and closes them all afterwards.
    private static func withAdminClients<Result>(ports: [Int], password: String, _ body: ([RedisClient]) async throws -> Result) async throws -> Result {
        var clients: [RedisClient] = []
        do {
            for port in ports {
                clients.append(try await RedisClient.connect(configuration: adminConfiguration(port: port, password: password)))
            }
            let result = try await body(clients)
            for client in clients { await client.close() }
            return result
        } catch {
            for client in clients { await client.close() }
            throw error
        }
    }

    private func withAdminClient<Result>(_ node: Int, _ body: (RedisClient) async throws -> Result) async throws -> Result {
        let client = try await RedisClient.connect(configuration: Self.adminConfiguration(port: nodes[node].port, password: password))
        return try await using(client, close: { await $0.close() }, body)
    }

    public struct ClusterError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// The cluster could not be formed; the description carries redis-cli's output and the end of
    /// each node's log.
    public struct StartFailed: Error, CustomStringConvertible {
        public let description: String

        init(reason: String, directory: URL, ports: [Int]) {
            var text = reason
            let files = ["cluster-create.log"] + ports.map { "\($0).log" }
            for file in files {
                guard let contents = try? String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8) else { continue }
                let tail = contents.split(separator: "\n", omittingEmptySubsequences: false).suffix(30).joined(separator: "\n")
                text += "\n--- \(file) ---\n\(tail)"
            }
            description = text
        }
    }
}
