import Foundation
import NIOCore
import NIOHTTP1

/// `POST /streams/{id}/ingest` over a connection of its own, its body sent with chunked transfer
/// encoding piece by piece as the test says: so that a test can hold the body open, send a piece
/// that splits a character, or break the body off by closing the socket, which an HTTP client's
/// request body cannot do on cue. The answer is read as it comes, whenever the server sends it.
final class ChunkedIngest: Sendable {
    /// What the server has sent back so far.
    struct Received: Sendable {
        var bytes: [UInt8] = []
        /// The server closed the connection (or it broke).
        var closed = false
        var answeredAt: ContinuousClock.Instant?
    }

    let what: String
    let openedAt: ContinuousClock.Instant
    let received = Observed(Received())
    private let commands: AsyncStream<Command>.Continuation

    private enum Command: Sendable {
        case write(ByteBuffer)
        case close
    }

    private init(what: String, openedAt: ContinuousClock.Instant, commands: AsyncStream<Command>.Continuation) {
        self.what = what
        self.openedAt = openedAt
        self.commands = commands
    }

    deinit { commands.finish() }

    /// Connects and sends the request's head; `offset` is its `Stream-Offset` (a continuation).
    static func open(in harness: FaultHarness, port: Int, stream id: String, offset: Int? = nil, _ what: String) async throws -> ChunkedIngest {
        let connection = try await TCPConnection.connect(port: port)
        let (stream, continuation) = AsyncStream.makeStream(of: Command.self)
        let ingest = ChunkedIngest(what: what, openedAt: .now, commands: continuation)
        let received = ingest.received
        var head = "POST /streams/\(id)/ingest HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nTransfer-Encoding: chunked\r\n"
        head += "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
        if let offset { head += "Stream-Offset: \(offset)\r\n" }
        continuation.yield(.write(ByteBuffer(string: head + "\r\n")))
        // The connection's one owner, run beside the test: it writes what the test sends, in
        // order, and reads the answer meanwhile; it closes the connection at `close`, when the
        // ingest is dropped, or when the test ends.
        harness.background {
            try? await connection.channel.executeThenClose { inbound, outbound in
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            for try await piece in inbound {
                                received.update { $0.bytes += piece.readableBytesView }
                                if let answer = Self.parse(received.value.bytes), answer.complete {
                                    received.update { $0.answeredAt = $0.answeredAt ?? .now }
                                }
                            }
                        } catch {
                            // A reset is a close too.
                        }
                        received.update { $0.closed = true }
                    }
                    for await command in stream {
                        guard case .write(let buffer) = command else { break }
                        // A write to a closed connection fails; the reader says so.
                        try? await outbound.write(buffer)
                    }
                    group.cancelAll()
                }
            }
            received.update { $0.closed = true }
        }
        return ingest
    }

    /// Sends `text` as one chunk of the body.
    func send(_ text: String) {
        send(bytes: Array(text.utf8))
    }

    /// Sends `bytes` as one chunk of the body, whole characters or not.
    func send(bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        var buffer = ByteBuffer(string: String(bytes.count, radix: 16) + "\r\n")
        buffer.writeBytes(bytes)
        buffer.writeString("\r\n")
        commands.yield(.write(buffer))
    }

    /// Sends the body's last chunk: the body has ended.
    func end() {
        commands.yield(.write(ByteBuffer(string: "0\r\n\r\n")))
    }

    /// Closes the connection, whether or not the body has ended: mid-body, the body breaks off.
    func close() {
        commands.yield(.close)
        commands.finish()
    }

    /// The server's answer once it is whole (or the connection closed), within `timeout`: `nil`
    /// when there is none by then.
    func answer(within timeout: Duration) async -> Answer? {
        let received = await received.wait(timeout: timeout) { $0.answeredAt != nil || $0.closed }
        return received.map(answer(from:))
    }

    /// The answer as it stands now, `nil` while none has come.
    var answerSoFar: Answer? {
        let value = received.value
        guard value.answeredAt != nil || value.closed else { return nil }
        return answer(from: value)
    }

    private func answer(from received: Received) -> Answer {
        let elapsed = (received.answeredAt ?? .now) - openedAt
        guard let parsed = Self.parse(received.bytes) else {
            return Answer(elapsed: elapsed, failure: "\(what): the connection closed with \(received.bytes.count) bytes of answer: \(String(decoding: received.bytes.prefix(200), as: UTF8.self).debugDescription)")
        }
        var answer = Answer(status: parsed.status, headers: parsed.headers, body: parsed.body, elapsed: elapsed)
        if !parsed.complete { answer.failure = "\(what): the answer broke off" }
        return answer
    }

    /// An HTTP/1.1 answer's head and as much of its body as has come.
    private static func parse(_ bytes: [UInt8]) -> (status: Int, headers: HTTPHeaders, body: String, complete: Bool)? {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let headEnd = bytes.firstRange(of: separator) else { return nil }
        let head = String(decoding: bytes[..<headEnd.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.add(name: String(line[..<colon]), value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let body = Array(bytes[headEnd.upperBound...])
        if headers.first(name: "Transfer-Encoding")?.lowercased() == "chunked" {
            let (decoded, complete) = dechunk(body)
            return (status, headers, String(decoding: decoded, as: UTF8.self), complete)
        }
        let length = headers.first(name: "Content-Length").flatMap(Int.init) ?? 0
        return (status, headers, String(decoding: body.prefix(length), as: UTF8.self), body.count >= length)
    }

    /// A chunked body's bytes, and whether its last chunk has come.
    private static func dechunk(_ bytes: [UInt8]) -> ([UInt8], Bool) {
        var decoded: [UInt8] = []
        var index = 0
        let crlf: [UInt8] = Array("\r\n".utf8)
        while let lineEnd = bytes[index...].firstRange(of: crlf) {
            guard let size = Int(String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self), radix: 16) else { break }
            if size == 0 { return (decoded, true) }
            let start = lineEnd.upperBound
            guard bytes.count >= start + size + 2 else { break }
            decoded += bytes[start..<(start + size)]
            index = start + size + 2
        }
        return (decoded, false)
    }
}
