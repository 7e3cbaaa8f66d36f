import NIOCore

/// Where Redis is and how to talk to it.
public struct RedisConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    /// An ACL user name; `nil` authenticates as the default user (when a password is set).
    public var username: String?
    public var password: String?
    public var database: Int
    /// Sent with `CLIENT SETNAME`, so that operators (and tests) can tell connections apart.
    public var clientName: String?
    /// TLS, for a `rediss://` URL; `nil` speaks plain TCP.
    public var tls: RedisTLS?

    /// How long opening a connection may take, including AUTH and SELECT.
    public var connectTimeout: TimeAmount
    /// How long a command may wait for its reply (or for a connection, while reconnecting), and how
    /// long the subscriber waits for Redis to answer its health check's `PING`.
    public var commandTimeout: TimeAmount
    /// The first pause before reconnecting after a lost connection; it doubles on every failure.
    public var reconnectInitialDelay: TimeAmount
    /// The longest pause between reconnection attempts.
    public var reconnectMaximumDelay: TimeAmount
    /// How often a ``RedisSubscriber`` checks that Redis still answers on its connection, which
    /// otherwise only receives: it sends `PING` this long after the last answer, and treats the
    /// connection as lost (reconnects, resubscribes, reports a gap) if the answer takes longer than
    /// ``commandTimeout``. A Redis that stopped answering is thus noticed within this interval plus
    /// the command timeout. Zero or less turns the check off.
    public var healthCheckInterval: TimeAmount

    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        clientName: String? = nil,
        tls: RedisTLS? = nil,
        connectTimeout: TimeAmount = .seconds(5),
        commandTimeout: TimeAmount = .seconds(10),
        reconnectInitialDelay: TimeAmount = .milliseconds(50),
        reconnectMaximumDelay: TimeAmount = .seconds(5),
        healthCheckInterval: TimeAmount = .seconds(2)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.clientName = clientName
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.reconnectInitialDelay = reconnectInitialDelay
        self.reconnectMaximumDelay = reconnectMaximumDelay
        self.healthCheckInterval = healthCheckInterval
    }

    /// Reads `redis://[[user]:password@]host[:port][/db]`, or `rediss://...` for TLS (trusting the
    /// system's store until ``tls`` names a CA). User and password may be percent-encoded; an IPv6
    /// host is written in brackets (`redis://[::1]:6379`). Timeouts keep their defaults.
    public init(url: String) throws(RedisConfigurationError) {
        self.init()
        let scheme: String
        if url.hasPrefix("rediss://") {
            scheme = "rediss://"
            // The system's trust store, until the caller names a CA.
            tls = RedisTLS()
        } else if url.hasPrefix("redis://") {
            scheme = "redis://"
        } else {
            throw RedisConfigurationError(message: "'\(url)' is not a redis:// or rediss:// URL")
        }
        var rest = Substring(url.dropFirst(scheme.count))
        if let end = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            throw RedisConfigurationError(message: "unexpected '\(rest[end...])' in the Redis URL")
        }

        var authority = rest
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty {
                guard path.allSatisfy(\.isASCIIDigit), let database = Int(path) else {
                    throw RedisConfigurationError(message: "the database '\(path)' is not a non-negative integer")
                }
                self.database = database
            }
        }
        rest = authority

        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = try Self.percentDecoded(userInfo[..<colon])
                self.username = user.isEmpty ? nil : user
                self.password = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...])
            } else {
                // `redis://secret@host` is how several clients spell a password without a user.
                self.password = try Self.percentDecoded(userInfo)
            }
            if self.password?.isEmpty == true {
                self.password = nil
            }
        }

        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw RedisConfigurationError(message: "the IPv6 host in '\(url)' has no closing ']'")
            }
            self.host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw RedisConfigurationError(message: "unexpected '\(after)' after the host")
                }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            self.host = String(rest[..<colon])
            portText = rest[rest.index(after: colon)...]
        } else {
            self.host = String(rest)
        }
        guard !host.isEmpty else {
            throw RedisConfigurationError(message: "the Redis URL '\(url)' has no host")
        }
        if let portText {
            guard portText.allSatisfy(\.isASCIIDigit), let port = Int(portText), (1...65535).contains(port) else {
                throw RedisConfigurationError(message: "the port '\(portText)' is not a number from 1 to 65535")
            }
            self.port = port
        }
    }

    private static func percentDecoded(_ text: Substring) throws(RedisConfigurationError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else {
                throw RedisConfigurationError(message: "a bad percent-escape in the Redis URL's credentials")
            }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The pause before reconnection attempt `attempt` (0 for the first retry): doubling, capped.
    func reconnectDelay(attempt: Int) -> TimeAmount {
        let initial = max(reconnectInitialDelay.nanoseconds, 1)
        let cap = max(reconnectMaximumDelay.nanoseconds, initial)
        var delay = initial
        var doublings = max(attempt, 0)
        // At most 63 turns before the cap is reached, whatever `attempt` is.
        while doublings > 0, delay < cap {
            delay = delay > cap / 2 ? cap : delay * 2
            doublings -= 1
        }
        return .nanoseconds(delay)
    }
}

extension RedisConfiguration: CustomStringConvertible {
    /// The configuration without its password, for logs.
    public var description: String {
        let user = username.map { "\($0)@" } ?? (password == nil ? "" : "***@")
        return "\(tls == nil ? "redis" : "rediss")://\(user)\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)"
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isWholeNumber }
}
