import Foundation
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A TCP proxy between the browser and nginx that breaks connections the way a network does: the
/// first `cuts` event-stream responses (requests that accept `text/event-stream`) are reset after
/// `cutAfterBytes` bytes, so that the browser holds part of the response and then a connection
/// error. It forwards one request per connection (it asks nginx for `Connection: close`) and
/// records each request it saw.
final class CuttingProxy: Sendable {
    struct Request: Sendable, CustomStringConvertible {
        let method: String
        let target: String
        let lastEventID: String?
        let eventStream: Bool
        let cut: Bool
        let contentLength: Int

        var description: String {
            "\(method) \(target)\(lastEventID.map { " Last-Event-ID: \($0)" } ?? "")\(cut ? " (cut)" : "")"
        }
    }

    let port: Int
    private let upstreamPort: Int
    private let cutAfterBytes: Int
    private let state: Mutex<(cutsLeft: Int, requests: [Request])>

    private init(port: Int, upstreamPort: Int, cuts: Int, cutAfterBytes: Int) {
        self.port = port
        self.upstreamPort = upstreamPort
        self.cutAfterBytes = cutAfterBytes
        state = Mutex((cuts, []))
    }

    var base: String { "http://127.0.0.1:\(port)" }

    /// The requests it forwarded, in the order they came.
    var requests: [Request] { state.withLock { $0.requests } }

    /// Listens on a free port of 127.0.0.1 and forwards to `upstreamPort` until the test ends.
    static func start(_ harness: FaultHarness, upstreamPort: Int, cuts: Int, cutAfterBytes: Int) async throws -> CuttingProxy {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        guard let port = server.channel.localAddress?.port else {
            try? await server.channel.close()
            throw Failure(message: "the proxy's listening socket has no port")
        }
        let proxy = CuttingProxy(port: port, upstreamPort: upstreamPort, cuts: cuts, cutAfterBytes: cutAfterBytes)
        harness.background {
            try? await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask { try? await proxy.forward(connection) }
                    }
                }
            }
        }
        return proxy
    }

    private func forward(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws {
        try await client.executeThenClose { inbound, outbound in
            var fromClient = inbound.makeAsyncIterator()
            var received = ByteBuffer()
            var headLength: Int?
            while headLength == nil {
                guard let piece = try await fromClient.next() else { return }
                received.writeImmutableBuffer(piece)
                headLength = Self.headLength(in: received)
            }
            guard let headLength, let head = received.readString(length: headLength) else { return }
            let request = record(head)
            // The body, all of it before the request goes on (a browser's fetch sends a string
            // body with its Content-Length).
            while received.readableBytes < request.contentLength {
                guard let piece = try await fromClient.next() else { return }
                received.writeImmutableBuffer(piece)
            }
            let upstream = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(2))
                .connect(host: "127.0.0.1", port: upstreamPort) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            try await upstream.executeThenClose { fromUpstream, toUpstream in
                var first = ByteBuffer(string: Self.closing(head))
                first.writeBuffer(&received)
                try await toUpstream.write(first)
                var sent = 0
                for try await piece in fromUpstream {
                    guard request.cut, sent + piece.readableBytes > cutAfterBytes else {
                        try await outbound.write(piece)
                        sent += piece.readableBytes
                        continue
                    }
                    if let part = piece.getSlice(at: piece.readerIndex, length: max(cutAfterBytes - sent, 1)) {
                        try await outbound.write(part)
                    }
                    // A reset, not a close: the browser's read fails as on a broken network.
                    try await (client.channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
                    return
                }
            }
        }
    }

    /// Parses the request head and decides whether its response is cut.
    private func record(_ head: String) -> Request {
        let lines = head.split(separator: "\r\n")
        let requestLine = lines.first?.split(separator: " ") ?? []
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let eventStream = headers["accept"]?.contains("text/event-stream") == true
        return state.withLock { state in
            let cut = eventStream && state.cutsLeft > 0
            if cut { state.cutsLeft -= 1 }
            let request = Request(
                method: requestLine.first.map(String.init) ?? "?",
                target: requestLine.dropFirst().first.map(String.init) ?? "?",
                lastEventID: headers["last-event-id"],
                eventStream: eventStream,
                cut: cut,
                contentLength: headers["content-length"].flatMap { Int($0) } ?? 0
            )
            state.requests.append(request)
            return request
        }
    }

    /// The head with `Connection: close` instead of any Connection header: the response then
    /// ends with nginx's connection.
    private static func closing(_ head: String) -> String {
        let lines = head.split(separator: "\r\n").filter { !$0.lowercased().hasPrefix("connection:") }
        return (lines + ["Connection: close"]).joined(separator: "\r\n") + "\r\n\r\n"
    }

    /// The length of the request head up to and with its blank line, once it has all come.
    private static func headLength(in buffer: ByteBuffer) -> Int? {
        let bytes = buffer.readableBytesView
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        guard let range = bytes.firstRange(of: end) else { return nil }
        return range.upperBound - bytes.startIndex
    }

    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
