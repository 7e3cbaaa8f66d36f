import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What a connection's responses go to. Called on the connection's event loop.
protocol ResponseConsumer: AnyObject {
    func head(status: Int, connection: HTTPConnection)
    func body(_ bytes: UnsafeRawBufferPointer, connection: HTTPConnection)
    /// The response's body has ended (by its length or its last chunk).
    func end(connection: HTTPConnection)
    /// The connection has closed.
    func closed(connection: HTTPConnection)
}

/// Raw HTTP/1.1 over a NIO socket: requests are bytes the caller writes; responses are parsed
/// here (status line, Content-Length, chunked, or a body that lasts until the connection closes).
final class HTTPConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private enum State {
        case head
        case chunkSize
        case chunkData(Int)
        case chunkDataEnd
        case trailer
        case length(Int)
        case untilClose
    }

    let consumer: ResponseConsumer
    private(set) var channel: Channel?
    private var state = State.head
    private var pending: [UInt8] = []
    private(set) var isClosed = false

    init(consumer: ResponseConsumer) {
        self.consumer = consumer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        channel = context.channel
    }

    func send(_ bytes: [UInt8], flush: Bool = true) {
        guard let channel else { return }
        let buffer = channel.allocator.buffer(bytes: bytes)
        if flush {
            channel.writeAndFlush(buffer, promise: nil)
        } else {
            channel.write(buffer, promise: nil)
        }
    }

    func close() {
        channel?.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        if case .untilClose = state {
            state = .head
            consumer.end(connection: self)
        }
        consumer.closed(connection: self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { parse($0) }
    }

    private func parse(_ input: UnsafeRawBufferPointer) {
        var bytes = input
        while !bytes.isEmpty, !isClosed {
            switch state {
            case .head:
                // Headers are small: gather them, then parse.
                let before = pending.count
                pending.append(contentsOf: bytes)
                guard let end = headEnd(pending, from: max(0, before - 3)) else { return }
                let used = end - before
                let head = Array(pending[..<end])
                pending.removeAll(keepingCapacity: true)
                bytes = UnsafeRawBufferPointer(rebasing: bytes[used...])
                parseHead(head)
            case .chunkSize, .trailer:
                guard let newline = bytes.firstIndex(of: 0x0A) else {
                    pending.append(contentsOf: bytes)
                    return
                }
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[..<newline]))
                bytes = UnsafeRawBufferPointer(rebasing: bytes[(newline + 1)...])
                let line = pending
                pending.removeAll(keepingCapacity: true)
                if case .trailer = state {
                    if line.isEmpty || line == [0x0D] { finishResponse() }
                    continue
                }
                var size = 0
                for byte in line {
                    let digit: Int
                    switch byte {
                    case 0x30...0x39: digit = Int(byte - 0x30)
                    case 0x61...0x66: digit = Int(byte - 0x61 + 10)
                    case 0x41...0x46: digit = Int(byte - 0x41 + 10)
                    default: digit = -1
                    }
                    if digit < 0 { break }
                    size = size * 16 + digit
                }
                state = size == 0 ? .trailer : .chunkData(size)
            case .chunkData(let remaining):
                let take = min(remaining, bytes.count)
                consumer.body(UnsafeRawBufferPointer(rebasing: bytes[..<take]), connection: self)
                bytes = UnsafeRawBufferPointer(rebasing: bytes[take...])
                state = take == remaining ? .chunkDataEnd : .chunkData(remaining - take)
            case .chunkDataEnd:
                // The CRLF after a chunk's data.
                if bytes[0] == 0x0A { state = .chunkSize }
                bytes = UnsafeRawBufferPointer(rebasing: bytes[1...])
            case .length(let remaining):
                let take = min(remaining, bytes.count)
                consumer.body(UnsafeRawBufferPointer(rebasing: bytes[..<take]), connection: self)
                bytes = UnsafeRawBufferPointer(rebasing: bytes[take...])
                if take == remaining { finishResponse() } else { state = .length(remaining - take) }
            case .untilClose:
                consumer.body(bytes, connection: self)
                return
            }
        }
    }

    private func finishResponse() {
        state = .head
        consumer.end(connection: self)
    }

    private func headEnd(_ bytes: [UInt8], from: Int) -> Int? {
        var index = from
        while index + 3 < bytes.count {
            if bytes[index] == 0x0D, bytes[index + 1] == 0x0A, bytes[index + 2] == 0x0D, bytes[index + 3] == 0x0A {
                return index + 4
            }
            index += 1
        }
        return nil
    }

    private func parseHead(_ head: [UInt8]) {
        let text = String(decoding: head, as: UTF8.self)
        let lines = text.split(separator: "\r\n")
        var status = 0
        if let first = lines.first {
            let parts = first.split(separator: " ")
            if parts.count >= 2 { status = Int(parts[1]) ?? 0 }
        }
        var length: Int?
        var chunked = false
        for line in lines.dropFirst() {
            let lower = line.lowercased()
            if lower.hasPrefix("content-length:") {
                length = Int(lower.dropFirst("content-length:".count).trimmingCharacters(in: " "))
            } else if lower.hasPrefix("transfer-encoding:"), lower.contains("chunked") {
                chunked = true
            }
        }
        if chunked {
            state = .chunkSize
        } else if let length {
            state = .length(length)
        } else {
            state = .untilClose
        }
        consumer.head(status: status, connection: self)
        if case .length(0) = state { finishResponse() }
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> Substring {
        var s = self
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return s
    }
}

struct Address: CustomStringConvertible {
    let host: String
    let port: Int

    init(_ text: String) {
        let parts = text.split(separator: ":")
        host = parts.count > 1 ? String(parts[0]) : "127.0.0.1"
        port = Int(parts.last!)!
    }

    var description: String { "\(host):\(port)" }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)

/// Opens a connection whose responses go to `consumer`. A small receive buffer is set before
/// connecting; `autoRead: false` makes a client that never reads.
func connect(_ address: Address, consumer: ResponseConsumer, receiveBuffer: Int? = nil, autoRead: Bool = true) async throws -> HTTPConnection {
    let handler = HTTPConnection(consumer: consumer)
    var bootstrap = ClientBootstrap(group: group)
        .connectTimeout(.seconds(10))
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelOption(.autoRead, value: autoRead)
    if let receiveBuffer {
        bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer))
    }
    _ = try await bootstrap
        .channelInitializer { channel in channel.pipeline.addHandler(handler) }
        .connect(host: address.host, port: address.port)
        .get()
    return handler
}

/// Opens `count` connections, `parallel` at a time; a failed connect is `nil`.
func connectMany(_ count: Int, parallel: Int = 128, _ make: @escaping @Sendable (Int) async throws -> HTTPConnection) async -> [HTTPConnection?] {
    var result = [HTTPConnection?](repeating: nil, count: count)
    var next = 0
    await withTaskGroup(of: (Int, HTTPConnection?).self) { tasks in
        func add() {
            let index = next
            next += 1
            tasks.addTask {
                for attempt in 0..<3 {
                    if let connection = try? await make(index) { return (index, connection) }
                    try? await Task.sleep(for: .milliseconds(50 * (attempt + 1)))
                }
                return (index, nil)
            }
        }
        while next < min(parallel, count) { add() }
        for await (index, connection) in tasks {
            result[index] = connection
            if next < count { add() }
        }
    }
    return result
}

func request(_ method: String, _ path: String, headers: [String] = [], body: [UInt8]? = nil) -> [UInt8] {
    var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for header in headers { text += header + "\r\n" }
    if let body { text += "Content-Length: \(body.count)\r\n" }
    text += "\r\n"
    return Array(text.utf8) + (body ?? [])
}

/// One request, its status and body.
final class SimpleResponse: ResponseConsumer, @unchecked Sendable {
    let gate = Gate<(Int, [UInt8])>()
    private var status = 0
    private var bytes: [UInt8] = []

    func head(status: Int, connection: HTTPConnection) { self.status = status }
    func body(_ bytes: UnsafeRawBufferPointer, connection: HTTPConnection) { self.bytes.append(contentsOf: bytes) }
    func end(connection: HTTPConnection) { gate.open((status, bytes)) }
    func closed(connection: HTTPConnection) { gate.open((status, bytes)) }
}

/// One request on a connection of its own; status 0 when it failed or timed out.
func fetch(_ address: Address, _ bytes: [UInt8], timeout: TimeAmount = .seconds(10)) async -> (Int, [UInt8]) {
    let response = SimpleResponse()
    guard let connection = try? await connect(address, consumer: response) else { return (0, []) }
    connection.send(bytes)
    let result = await response.gate.wait(timeout: timeout)
    connection.close()
    return result ?? (0, [])
}
