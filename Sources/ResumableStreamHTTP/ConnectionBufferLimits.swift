import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Bounds what a connection holds for a client that does not read, in the process and in the
/// kernel, so that a stalled client costs a small fixed amount and no CPU; and what any
/// connection holds between reads.
///
/// - NIO's pending writes: the connection is unwritable (the response's writer waits) as soon as
///   more than `pendingBytes` wait in the process, and writable again only once they have all
///   gone to the socket; so a stalled response holds at most that plus one write.
/// - The kernel's send queue (Linux, `TCP_NOTSENT_LOWAT`): the socket takes no more once
///   `unsentBytes` wait in it unsent. Without it Linux grows the send buffer of a loopback or
///   fast connection to megabytes, and fills it for a client that reads nothing: that copy is
///   the CPU a stalled client costs, and the memory, times every stalled client.
///
/// A client that reads keeps its data moving: unsent bytes leave the queue as fast as it takes
/// them, and the kernel's window still carries what is in flight. Too small a bound costs such a
/// client wake-ups: with 16 KiB, a 1 MiB resume on loopback took 45 ms instead of 32 (64 KiB).
///
/// Between reads NIO keeps each connection's receive buffer, which a follower keeps for as long
/// as it follows: it starts here at 512 bytes (a request head's size), not NIO's 2 KiB, and
/// doubles with each read that fills it, up to 64 KiB, so an upload grows it within a few reads.
final class ConnectionBufferLimits: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let pendingBytes: Int
    private let unsentBytes: Int

    init(pendingBytes: Int, unsentBytes: Int) {
        self.pendingBytes = pendingBytes
        self.unsentBytes = unsentBytes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard let options = context.channel.syncOptions else { return }
        try? options.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 1, high: max(pendingBytes, 1)))
        try? options.setOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 64 * 1024))
        #if os(Linux)
        try? options.setOption(
            ChannelOptions.tcpOption(NIOBSDSocket.Option(rawValue: CInt(TCP_NOTSENT_LOWAT))),
            value: SocketOptionValue(unsentBytes)
        )
        #endif
    }
}
