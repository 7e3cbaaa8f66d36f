/// Where a cluster client starts: `REDIS_URL` naming one seed node or several, comma-separated.
/// The first is a whole URL, whose scheme, credentials and database every node shares; each other
/// is a whole URL too, or only `host:port`.
///
///     redis://:secret@10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379
public struct ClusterSeeds: Sendable, Hashable {
    /// How to reach every node, at the first seed's address.
    public var configuration: RedisConfiguration
    /// Every seed, the first included.
    public var nodes: [RedisClusterNode]

    public init(url: String) throws(RedisConfigurationError) {
        let parts = url.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
        guard let first = parts.first, !first.isEmpty else {
            throw RedisConfigurationError(message: "the Redis URL is empty")
        }
        configuration = try RedisConfiguration(url: first)
        let scheme = configuration.tls == nil ? "redis://" : "rediss://"
        nodes = [RedisClusterNode(host: configuration.host, port: configuration.port)]
        for part in parts.dropFirst() {
            guard !part.isEmpty else { throw RedisConfigurationError(message: "an empty seed in the Redis URL '\(url)'") }
            let seed = try RedisConfiguration(url: part.contains("://") ? part : scheme + part)
            let node = RedisClusterNode(host: seed.host, port: seed.port)
            if !nodes.contains(node) { nodes.append(node) }
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
