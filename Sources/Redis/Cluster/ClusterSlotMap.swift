/// One node of a Redis Cluster, by the address clients reach it at.
public struct RedisClusterNode: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Which master serves which slots, as `CLUSTER SLOTS` tells it. A value that does no I/O: the
/// client asks it where a key goes, and tells it what a `MOVED` said until it reads the map again.
public struct ClusterSlotMap: Sendable, Equatable {
    /// Each slot's master; `nil` for a slot that no master serves (the cluster is incomplete).
    private var masters: [RedisClusterNode?]
    /// Every master that serves at least one slot; kept beside the slots, because a client asks
    /// for it on every command without a key.
    public private(set) var nodes: Set<RedisClusterNode>

    public init(_ ranges: [(slots: ClosedRange<Int>, master: RedisClusterNode)]) {
        masters = Array(repeating: nil, count: HashSlot.count)
        for (slots, master) in ranges where slots.lowerBound >= 0 && slots.upperBound < HashSlot.count {
            for slot in slots { masters[slot] = master }
        }
        nodes = Set(masters.compactMap { $0 })
    }

    /// Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, ...], replica...], ...]`. A
    /// node that gives an empty host is the one that was asked (`answeredBy`'s host).
    public init(slotsReply reply: RedisReply, answeredBy: RedisClusterNode) throws(RedisProtocolError) {
        guard let entries = reply.array else { throw RedisProtocolError(message: "CLUSTER SLOTS answered \(reply)") }
        var ranges: [(ClosedRange<Int>, RedisClusterNode)] = []
        for entry in entries {
            guard let parts = entry.array, parts.count >= 3,
                let start = parts[0].integer, let end = parts[1].integer, start <= end,
                let master = parts[2].array, master.count >= 2,
                let host = master[0].string, let port = master[1].integer
            else { throw RedisProtocolError(message: "CLUSTER SLOTS answered an entry \(entry)") }
            guard host != "?" else { continue }
            ranges.append((start...end, RedisClusterNode(host: host.isEmpty ? answeredBy.host : host, port: port)))
        }
        self.init(ranges)
    }

    public func master(of slot: Int) -> RedisClusterNode? {
        guard slot >= 0, slot < masters.count else { return nil }
        return masters[slot]
    }

    public func master(ofKey key: String) -> RedisClusterNode? {
        master(of: HashSlot.of(key))
    }


    /// Whether every slot has a master.
    public var isComplete: Bool { !masters.contains(nil) }

    /// A `MOVED` says where one slot is now; the rest of the map is read again soon after.
    public mutating func moved(slot: Int, to node: RedisClusterNode) {
        guard slot >= 0, slot < masters.count else { return }
        masters[slot] = node
        nodes = Set(masters.compactMap { $0 })
    }
}

/// What a cluster node answers for a key it does not serve.
public enum ClusterRedirection: Sendable, Equatable {
    /// `MOVED <slot> <host>:<port>`: the slot lives there now; ask there, and from now on.
    case moved(slot: Int, to: RedisClusterNode)
    /// `ASK <slot> <host>:<port>`: the slot is migrating; ask there once, after `ASKING`.
    case ask(slot: Int, to: RedisClusterNode)

    public init?(_ error: RedisServerError) {
        let words = error.message.split(separator: " ")
        guard words.count == 3, let slot = Int(words[1]), slot >= 0, slot < HashSlot.count,
            let colon = words[2].lastIndex(of: ":"), let port = Int(words[2][words[2].index(after: colon)...])
        else { return nil }
        var host = String(words[2][..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let node = RedisClusterNode(host: host, port: port)
        switch words[0] {
        case "MOVED": self = .moved(slot: slot, to: node)
        case "ASK": self = .ask(slot: slot, to: node)
        default: return nil
        }
    }
}

/// Where one keyed command goes, and where it goes next after each redirection: at most
/// `limit` of them, so that a cluster whose map keeps changing is an error, not a loop.
public struct ClusterRouting: Sendable, Equatable {
    public enum Step: Sendable, Equatable {
        /// Send the command to `node`, preceded by `ASKING` when `asking`.
        case send(to: RedisClusterNode, asking: Bool)
        /// Read the slot map again, then send to `node`.
        case refreshMapThenSend(to: RedisClusterNode)
        /// Give up with this error.
        case fail(RedisServerError)
    }

    public let limit: Int
    public private(set) var redirections = 0

    public init(limit: Int = 5) {
        self.limit = limit
    }

    /// The first step: the slot's master, or any node (which redirects) when the map has none.
    public func start(slot: Int, map: ClusterSlotMap, anyNode: RedisClusterNode) -> Step {
        .send(to: map.master(of: slot) ?? anyNode, asking: false)
    }

    /// The next step after the node answered `error`; any error but a redirection is the answer.
    public mutating func answered(_ error: RedisServerError, map: inout ClusterSlotMap) -> Step {
        guard let redirection = ClusterRedirection(error) else { return .fail(error) }
        redirections += 1
        guard redirections <= limit else {
            return .fail(RedisServerError(message: "\(error.message) (after \(limit) redirections the cluster still moves this slot)"))
        }
        switch redirection {
        case .moved(let slot, let node):
            map.moved(slot: slot, to: node)
            return .refreshMapThenSend(to: node)
        case .ask(_, let node):
            return .send(to: node, asking: true)
        }
    }
}
