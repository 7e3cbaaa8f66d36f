import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// What one request got: its status, headers and body, how long the answer took, or why there was
/// none. Never thrown: a test that sends many requests at once reports on each.
struct Answer: Sendable, CustomStringConvertible {
    var status: Int?
    var headers = HTTPHeaders()
    var body = ""
    var elapsed: Duration
    var failure: String?

    /// The `error` of a JSON refusal, `nil` when the body is not one.
    var errorCode: String? {
        struct Refusal: Decodable { let error: String }
        return (try? JSONDecoder().decode(Refusal.self, from: Data(body.utf8)))?.error
    }

    var streamState: String? { headers.first(name: "Stream-State") }

    /// The `state` of a JSON status answer.
    var jsonState: String? {
        struct Status: Decodable { let state: String }
        return (try? JSONDecoder().decode(Status.self, from: Data(body.utf8)))?.state
    }

    var description: String {
        let time = "after \(elapsed.seconds) s"
        if let failure { return "no answer \(time): \(failure)" }
        let state = streamState.map { " Stream-State: \($0)" } ?? ""
        let text = body.isEmpty ? "(empty body)" : String(body.prefix(300))
        return "\(status.map(String.init) ?? "?")\(state) \(time): \(text)"
    }
}

extension Duration {
    /// In seconds, to the millisecond, for messages.
    var seconds: String {
        let (seconds, attoseconds) = components
        return String(format: "%.3f", Double(seconds) + Double(attoseconds) / 1e18)
    }
}

/// The tests' HTTP client. Every request asks for `Connection: close`, so that no request rides
/// on a connection a fault (or a shutdown) has already closed.
enum HTTP {
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(5), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        configuration.timeout = .init(connect: .seconds(2), read: .seconds(30))
        return HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton), configuration: configuration)
    }()

    static func request(_ method: HTTPMethod, _ url: String, body: String? = nil, headers: [(String, String)] = []) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        return request
    }

    /// A request whose whole answer is read, within `timeout`. `elapsed` is the time to the
    /// answer's head: how long the server took to answer.
    static func send(_ method: HTTPMethod, _ url: String, body: String? = nil, headers: [(String, String)] = [], timeout: Duration = .seconds(10)) async -> Answer {
        let start = ContinuousClock.now
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request(method, url, body: body, headers: headers), deadline: .now() + TimeAmount(timeout))
        } catch {
            return Answer(elapsed: ContinuousClock.now - start, failure: String(describing: error))
        }
        var answer = Answer(status: Int(response.status.code), headers: response.headers, elapsed: ContinuousClock.now - start)
        do {
            answer.body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        } catch {
            answer.failure = "the body broke off: \(error)"
        }
        return answer
    }

    /// Opens a stream and reads it until a chunk's id passes `offset`: the answer's head, and
    /// when the chunk came (its `elapsed`), or what was read when `timeout` ran out.
    static func readPast(_ url: String, offset: Int, timeout: Duration) async -> (answer: Answer, read: StreamRead) {
        let start = ContinuousClock.now
        let response: HTTPClientResponse
        do {
            response = try await open(.GET, url, timeout: timeout)
        } catch {
            return (Answer(elapsed: ContinuousClock.now - start, failure: String(describing: error)), StreamRead())
        }
        var answer = Answer(status: Int(response.status.code), headers: response.headers, elapsed: ContinuousClock.now - start)
        guard response.status == .ok else {
            answer.body = (try? await response.body.collect(upTo: 1 << 20)).map { String(buffer: $0) } ?? ""
            return (answer, StreamRead())
        }
        let read = Observed(StreamRead())
        let remaining = timeout - answer.elapsed
        let passed = await withTaskGroup(of: StreamRead?.self) { group in
            group.addTask {
                await EventStreamReader.read(response, into: read, timeout: timeout)
                return nil
            }
            group.addTask { await read.wait(timeout: remaining) { $0.lastId > offset || $0.finished } }
            var passed: StreamRead?
            for await result in group {
                if let result {
                    passed = result
                    break
                }
            }
            group.cancelAll()
            return passed
        }
        answer.elapsed = ContinuousClock.now - start
        if passed.map({ $0.lastId > offset }) != true {
            answer.failure = "no chunk past offset \(offset): \(read.value)"
        }
        return (answer, read.value)
    }

    /// A request whose body is read as it comes (a stream); the caller reads it within `timeout`
    /// of now.
    static func open(_ method: HTTPMethod, _ url: String, body: String? = nil, headers: [(String, String)] = [], timeout: Duration) async throws -> HTTPClientResponse {
        try await client.execute(request(method, url, body: body, headers: headers), deadline: .now() + TimeAmount(timeout))
    }
}
