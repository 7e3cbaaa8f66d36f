import AsyncHTTPClient
import Foundation
import NIOCore
import ResumableStreamServer
import Testing
import TestSupport

/// Connections over real sockets: the header and idle timeouts close the connections they are
/// for and no other, and requests NIO's parser refuses get the JSON error body.
@Suite(.timeLimit(.minutes(2)))
struct ConnectionTests {
    /// Short timeouts, each long enough to tell from the other.
    static func timeouts(header: Duration, idle: Duration) -> (inout ServerConfiguration) -> Void {
        { configuration in
            configuration.headerTimeout = header
            configuration.idleTimeout = idle
        }
    }

    @Test func aConnectionThatSendsNothingIsClosedAfterTheHeaderTimeout() async throws {
        try await withServers(1, redis: false, Self.timeouts(header: .seconds(1), idle: .seconds(60))) { servers in
            let start = ContinuousClock.now
            let connection = try await RawConnection.connect(port: servers[0].port)
            let received = await connection.readUntilClosed()
            let elapsed = ContinuousClock.now - start
            #expect(received == "")
            #expect(elapsed >= .seconds(1))
            #expect(elapsed < .seconds(10))
        }
    }

    @Test func aConnectionThatTricklesItsHeadIsClosedWhileOthersAreServed() async throws {
        try await withServers(1, redis: false, Self.timeouts(header: .seconds(1), idle: .seconds(60))) { servers in
            let server = servers[0]
            let start = ContinuousClock.now
            let trickler = try await RawConnection.connect(port: server.port)
            let closed = Task { await trickler.readUntilClosed() }
            // One byte at a time, each in time to keep any timeout that a byte restarts from
            // running out; the head never ends.
            let trickling = Task {
                for byte in Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "x"), count: 1000) {
                    try await trickler.write([byte])
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            // Another connection is served meanwhile.
            #expect(try await Client.json(.GET, "\(server.base)/healthz").status == 200)
            #expect(await closed.value == "")
            let elapsed = ContinuousClock.now - start
            #expect(elapsed >= .seconds(1))
            #expect(elapsed < .seconds(10))
            trickling.cancel()
            _ = await trickling.result
        }
    }

    @Test func anIdleKeptAliveConnectionIsClosedAfterTheIdleTimeout() async throws {
        try await withServers(1, redis: false, Self.timeouts(header: .seconds(30), idle: .seconds(1))) { servers in
            let connection = try await RawConnection.connect(port: servers[0].port)
            let closed = Task { await connection.readUntilClosed() }
            try await connection.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let start = ContinuousClock.now
            let received = await closed.value
            let elapsed = ContinuousClock.now - start
            // One answer, then the close: the idle timeout, not the header timeout.
            #expect(received.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(received.components(separatedBy: "HTTP/1.1 ").count == 2)
            #expect(elapsed >= .seconds(1))
            #expect(elapsed < .seconds(10))
        }
    }

    @Test func aStreamingResponseOutlastsBothTimeouts() async throws {
        try await withServers(1, redis: false, Self.timeouts(header: .seconds(1), idle: .seconds(1))) { servers in
            // Silences of 1.5 s between chunks, longer than either timeout.
            let body = #"{"source":"demo","parameters":{"count":3,"intervalMs":1500}}"#
            let read = try await Client.read(Client.create(servers[0].base, "slow-stream", body: body))
            #expect(read.text == demoText(3))
            #expect(read.end?.status == "completed")
        }
    }

    @Test func aSlowUploadOutlastsBothTimeouts() async throws {
        try await withServers(1, redis: false, Self.timeouts(header: .seconds(1), idle: .seconds(1))) { servers in
            let upload = try await RawConnection.connect(port: servers[0].port)
            try await upload.write("POST /streams/slow-upload/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            let answer = Task { try await upload.readToClose() }
            for piece in ["first ", "second ", "third"] {
                try await upload.writeChunk(Array(piece.utf8))
                // The uploader's own pace: a silence longer than either timeout.
                try await Task.sleep(for: .milliseconds(1500))
            }
            try await upload.write("0\r\n\r\n")
            let response = try await answer.value
            #expect(response.hasPrefix("HTTP/1.1 201 Created\r\n"))
            #expect(response.hasSuffix(#"{"id":"slow-upload","length":18,"state":"completed"}"#))
        }
    }

    struct Refused: CustomStringConvertible, Sendable {
        let name: String
        let request: [UInt8]
        var description: String { name }
    }

    static let refused: [Refused] = [
        Refused(name: "a 100 KB request line", request: Array("GET /\(String(repeating: "a", count: 100_000)) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)),
        Refused(name: "a method HTTP does not define", request: Array("FOO /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)),
        Refused(name: "UTF-8 bytes in the path, unencoded", request: Array("GET /streams/".utf8) + [0xC3, 0xA9] + Array(" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)),
        Refused(name: "a byte that is no UTF-8 in the path", request: Array("GET /streams/".utf8) + [0xFF] + Array(" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)),
    ]

    @Test(arguments: refused)
    func aRequestTheParserRefusesGetsTheJSONError(_ bad: Refused) async throws {
        try await withServers(1, redis: false) { servers in
            let connection = try await RawConnection.connect(port: servers[0].port)
            let answer = Task { await connection.readUntilClosed() }
            try await connection.write(bad.request)
            let response = await answer.value
            let parts = response.components(separatedBy: "\r\n\r\n")
            let head = parts[0].lowercased()
            #expect(head.hasPrefix("http/1.1 400 bad request\r\n"))
            #expect(head.contains("\r\ncontent-type: application/json; charset=utf-8"))
            #expect(head.contains("\r\nconnection: close"))
            let body = parts.dropFirst().joined(separator: "\r\n\r\n")
            let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
            #expect(object["error"] as? String == "bad_request")
            #expect((object["message"] as? String)?.isEmpty == false)
            // The server goes on serving.
            #expect(try await Client.json(.GET, "\(servers[0].base)/healthz").status == 200)
        }
    }
}
