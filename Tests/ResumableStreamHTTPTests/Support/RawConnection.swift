import NIOCore
import NIOPosix

/// A plain TCP connection that writes what the test gives it, byte for byte: for requests whose
/// body the test sends piece by piece (chunked), when it chooses.
struct RawConnection {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func connect(port: Int) async throws -> RawConnection {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return RawConnection(channel: channel)
    }

    func write(_ text: String) async throws {
        try await write(Array(text.utf8))
    }

    func write(_ bytes: [UInt8]) async throws {
        try await channel.channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// One piece of a chunked body.
    func writeChunk(_ bytes: [UInt8]) async throws {
        try await write(Array(String(bytes.count, radix: 16).utf8) + [13, 10] + bytes + [13, 10])
    }

    /// Everything the server sends until it closes the connection, or until the connection fails
    /// (a reset, when the server closed while the test still wrote).
    func readUntilClosed() async -> String {
        var text = ""
        try? await channel.executeThenClose { inbound, _ in
            for try await piece in inbound {
                text += String(buffer: piece)
            }
        }
        return text
    }

    /// Everything the server sends until it closes the connection.
    func readToClose() async throws -> String {
        var text = ""
        try await channel.executeThenClose { inbound, _ in
            for try await piece in inbound {
                text += String(buffer: piece)
            }
        }
        return text
    }
}
