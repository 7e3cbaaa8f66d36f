import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A plain TCP connection to a port of 127.0.0.1, for what an HTTP client cannot do: send nothing,
/// send a request head byte by byte, speak Redis's protocol for a PING, see whether a port refuses.
struct TCPConnection {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func connect(port: Int) async throws -> TCPConnection {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return TCPConnection(channel: channel)
    }

    /// Whether a connection to `port` is refused now (nothing listens there). A plain `connect`
    /// on loopback: it answers at once.
    static func isRefused(port: Int) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == -1 && errno == ECONNREFUSED
    }

    /// Sends `request` and reads until the reply contains `expected` (or the connection ends).
    static func exchange(port: Int, _ request: String, until expected: String) async throws -> String {
        let connection = try await connect(port: port)
        return try await connection.channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var reply = ""
            for try await piece in inbound {
                reply += String(buffer: piece)
                if reply.contains(expected) { break }
            }
            return reply
        }
    }
}

extension TCPConnection {
    /// Sends `bytes` one at a time, `interval` apart, and reads until the server closes the
    /// connection: how long after `start` it did, and what it sent; `nil` if it is still open
    /// after `timeout`.
    func timeUntilClosed(since start: ContinuousClock.Instant, sending bytes: [UInt8], every interval: Duration, timeout: Duration) async throws -> (Duration?, String) {
        try await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: (Duration?, String)?.self) { group in
                group.addTask {
                    var received = ""
                    do {
                        for try await piece in inbound { received += String(buffer: piece) }
                    } catch {
                        // A reset is a close too.
                    }
                    return (ContinuousClock.now - start, received)
                }
                group.addTask {
                    for (index, byte) in bytes.enumerated() {
                        // The client's slowness is the fault: a byte every `interval`.
                        if index > 0 { try await Task.sleep(for: interval) }
                        do {
                            try await outbound.write(ByteBuffer(bytes: [byte]))
                        } catch {
                            return nil  // closed: the reader says when
                        }
                    }
                    return nil
                }
                group.addTask {
                    try await Task.sleep(until: start + timeout)
                    return (nil, "")
                }
                var outcome: (Duration?, String) = (nil, "")
                for try await result in group {
                    if let result {
                        outcome = result
                        break
                    }
                }
                group.cancelAll()
                return outcome
            }
        }
    }
}
