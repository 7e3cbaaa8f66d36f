import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The end event of a stream, decoded.
struct StreamEnd: Decodable, Equatable {
    let status: String
    let offset: Int
    let error: String?
}

/// A response's events as they arrive, parsed as a browser does.
struct EventStream: AsyncSequence {
    typealias Element = EventStreamParser.Event
    let body: HTTPClientResponse.Body

    struct AsyncIterator: AsyncIteratorProtocol {
        var pieces: HTTPClientResponse.Body.AsyncIterator
        var pending: [UInt8] = []

        mutating func next() async throws -> EventStreamParser.Event? {
            while true {
                // An event ends with a blank line; the server writes LF line ends.
                if let end = pending.indices.dropLast().first(where: { pending[$0] == 0x0A && pending[$0 + 1] == 0x0A }) {
                    let block = String(decoding: pending[...(end + 1)], as: UTF8.self)
                    pending.removeSubrange(...(end + 1))
                    if let event = EventStreamParser.parse(block).first { return event }
                    continue
                }
                guard let piece = try await pieces.next() else { return nil }
                pending.append(contentsOf: piece.readableBytesView)
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(pieces: body.makeAsyncIterator())
    }
}

/// What a client read from a stream response.
struct ReadStream {
    var text = ""
    var ids: [Int] = []
    var end: StreamEnd?
    var chunks: Int { ids.count }
    var lastId: Int? { ids.last }
}

enum Client {
    static func request(_ method: HTTPMethod, _ url: String, body: String? = nil, headers: [(String, String)] = []) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        return request
    }

    static func send(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        try await testHTTPClient.execute(request, timeout: .seconds(30))
    }

    /// A request whose whole answer is JSON: its status and the decoded object.
    static func json(_ method: HTTPMethod, _ url: String, body: String? = nil, headers: [(String, String)] = []) async throws -> (status: Int, object: [String: Any]) {
        let response = try await send(request(method, url, body: body, headers: headers))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
        return (Int(response.status.code), object)
    }

    /// Creates a demo stream and returns the open response.
    static func create(_ base: String, _ id: String, body: String, query: String = "") async throws -> HTTPClientResponse {
        try await send(request(.POST, "\(base)/streams/\(id)\(query)", body: body))
    }

    static func follow(_ base: String, _ id: String, query: String = "", lastEventId: Int? = nil) async throws -> HTTPClientResponse {
        try await send(request(.GET, "\(base)/streams/\(id)\(query)", headers: lastEventId.map { [("Last-Event-ID", String($0))] } ?? []))
    }

    /// Reads events until the end event, or until `stopAfter` chunks (then the connection is cut
    /// by dropping the body).
    static func read(_ response: HTTPClientResponse, stopAfter: Int = .max, onChunk: (ReadStream) -> Void = { _ in }) async throws -> ReadStream {
        var read = ReadStream()
        for try await event in EventStream(body: response.body) {
            if event.name == "end" {
                read.end = try JSONDecoder().decode(StreamEnd.self, from: Data(event.data.utf8))
                break
            }
            read.text += event.data
            if let id = event.id.flatMap(Int.init) { read.ids.append(id) }
            onChunk(read)
            if read.chunks >= stopAfter { break }
        }
        return read
    }
}

/// The text of a demo stream of `count` tokens.
func demoText(_ count: Int) -> String {
    (1...max(count, 1)).prefix(count).map { "token \($0) " }.joined()
}
