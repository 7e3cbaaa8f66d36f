import NIOConcurrencyHelpers
import NIOCore

/// The systems under test, by how they are spoken to.
enum SystemKind: String {
    /// This service: POST /streams/{id}[/ingest], GET /streams/{id}.
    case rs
    /// The Python port behind Starlette, with the same routes and framing.
    case py
    /// nginx with Nchan: POST /pub/{id} per message, GET /sub/{id} (EventSource, oldest first).
    case nchan
    /// nginx serving the same bytes as files: the limit.
    case `static`

    /// This service's framing: ids are offsets, and a whole stream ends with an `end` event.
    var framesLikeService: Bool { self != .nchan }

    func followRequest(id: String, text: TokenText, resumeAt: Int? = nil) -> [UInt8] {
        let path: String
        switch self {
        case .rs, .py: path = "/streams/\(id)" + (resumeAt.map { "?resumeAt=\($0)" } ?? "")
        case .nchan: path = "/sub/\(id)"
        case .static: path = staticPath(text)
        }
        return request("GET", path, headers: ["Accept: text/event-stream"])
    }

    func checker(_ text: TokenText, live: Bool) -> SSEChecker {
        SSEChecker(text: text, checkIds: framesLikeService, expectEnd: framesLikeService && !live)
    }
}

func staticPath(_ text: TokenText) -> String { "/t\(text.size)x\(text.count).sse" }

/// The source of a stream that the benchmark feeds: this service's and the Python port's ingest
/// (a chunked request body, one token per HTTP chunk), or Nchan's publisher (one POST per token,
/// one at a time on a kept-alive connection).
final class Publisher: ResponseConsumer, @unchecked Sendable {
    let system: SystemKind
    let text: TokenText
    let id: String
    let errors: Errors
    private var connection: HTTPConnection!
    /// The ingest's answer when its body has ended.
    let finished = Gate<Int>()
    /// Nchan: POSTs answered, and the chain of POSTs of a free-running source.
    private var answered = 0
    private var chainNext = 0
    private var chainEnd = 0
    let chainDone = Gate<Bool>()

    init(system: SystemKind, text: TokenText, id: String, errors: Errors) {
        self.system = system
        self.text = text
        self.id = id
        self.errors = errors
    }

    func start(_ address: Address) async throws {
        connection = try await connect(address, consumer: self)
        if system != .nchan {
            connection.send(Array("POST /streams/\(id)/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        }
    }

    private func bytes(_ index: Int) -> [UInt8] {
        let token = text.token(index)
        if system == .nchan {
            return request("POST", "/pub/\(id)", body: token)
        }
        return Array((String(token.count, radix: 16) + "\r\n").utf8) + token + [0x0D, 0x0A]
    }

    /// Sends token `index` (from 1).
    func send(_ index: Int) {
        let bytes = bytes(index)
        connection.channel!.eventLoop.execute { self.connection.send(bytes) }
    }

    /// Sends tokens `range` as fast as the publisher can: the ingest writes them all (each its own
    /// chunk and flush); Nchan's publisher sends the next POST when the last is answered.
    func sendAll(_ range: Range<Int>) {
        connection.channel!.eventLoop.execute {
            if self.system == .nchan {
                self.chainNext = range.lowerBound + 1
                self.chainEnd = range.upperBound
                self.connection.send(self.bytes(range.lowerBound))
            } else {
                for index in range { self.connection.send(self.bytes(index)) }
                self.chainDone.open(true)
            }
        }
    }

    /// Ends the ingest's body and waits for its answer (201); Nchan has nothing to end.
    func finish(timeout: TimeAmount = .seconds(30)) async -> Int {
        guard system != .nchan else { return 201 }
        connection.channel!.eventLoop.execute { self.connection.send(Array("0\r\n\r\n".utf8)) }
        return await finished.wait(timeout: timeout) ?? 0
    }

    func close() { connection?.close() }

    func head(status: Int, connection: HTTPConnection) {
        if system == .nchan {
            if status != 201, status != 202 { errors.add("publish_\(status)", "publisher answered \(status)") }
        } else if status != 201 {
            errors.add("ingest_\(status)", "ingest answered \(status)")
        }
        if system != .nchan { finished.open(status) }
    }

    func body(_ bytes: UnsafeRawBufferPointer, connection: HTTPConnection) {}

    func end(connection: HTTPConnection) {
        guard system == .nchan else { return }
        answered += 1
        if chainNext > 0 {
            if chainNext < chainEnd {
                connection.send(bytes(chainNext))
                chainNext += 1
            } else {
                chainNext = 0
                chainDone.open(true)
            }
        }
    }

    func closed(connection: HTTPConnection) {
        finished.open(0)
        chainDone.open(false)
    }
}

/// How many followers have each token, and when the last of them got it.
final class Progress: @unchecked Sendable {
    private let lock = NIOLock()
    private var alive: Int
    private var counts: [Int]
    private(set) var lastArrival: [UInt64]
    private var waiting: (token: Int, gate: Gate<Bool>)?

    init(followers: Int, tokens: Int) {
        alive = followers
        counts = Array(repeating: 0, count: tokens)
        lastArrival = Array(repeating: 0, count: tokens)
    }

    /// A follower has tokens `from..<to` (indices from 0).
    func advance(from: Int, to: Int) {
        let time = now()
        let open: Gate<Bool>? = lock.withLock {
            for token in from..<min(to, counts.count) {
                counts[token] += 1
                lastArrival[token] = time
            }
            return ready()
        }
        open?.open(true)
    }

    func followerFailed() {
        let open: Gate<Bool>? = lock.withLock {
            alive -= 1
            return ready()
        }
        open?.open(true)
    }

    private func ready() -> Gate<Bool>? {
        guard let waiting, counts[waiting.token] >= alive else { return nil }
        self.waiting = nil
        return waiting.gate
    }

    var followers: Int { lock.withLock { alive } }
    func arrival(_ token: Int) -> UInt64 { lock.withLock { lastArrival[token] } }

    /// Waits until every live follower has token `token`.
    func wait(token: Int, timeout: TimeAmount) async -> Bool {
        let gate = Gate<Bool>()
        let done: Bool = lock.withLock {
            if counts[token] >= alive { return true }
            waiting = (token, gate)
            return false
        }
        if done { return true }
        return await gate.wait(timeout: timeout) ?? false
    }
}

/// A reader of one stream (or, with `fetches`, of a static file again and again on its kept-alive
/// connection), checking every byte.
final class Follower: ResponseConsumer, @unchecked Sendable {
    let system: SystemKind
    let text: TokenText
    let live: Bool
    let errors: Errors
    var progress: Progress?
    var ready: Latch?
    var done: Latch?
    var onComplete: ((Follower) -> Void)?
    var request: [UInt8] = []
    var fetches = 1
    var closeWhenComplete = true

    private(set) var checker: SSEChecker
    private(set) var status = 0
    private(set) var startedAt: UInt64 = 0
    private(set) var firstTextAt: UInt64 = 0
    private(set) var completedAt: UInt64 = 0
    private(set) var failed = false
    private(set) var completed = false
    private var sawBody = false
    private var reported = 0
    private var stopped = false

    init(system: SystemKind, text: TokenText, live: Bool, errors: Errors) {
        self.system = system
        self.text = text
        self.live = live
        self.errors = errors
        checker = system.checker(text, live: live)
    }

    /// Sends the request; called on any thread.
    func start(on connection: HTTPConnection) {
        connection.channel!.eventLoop.execute {
            self.startedAt = now()
            connection.send(self.request)
        }
    }

    /// Closes the connection on purpose: what follows is no error.
    func stop(_ connection: HTTPConnection?) {
        guard let connection else { return }
        connection.channel?.eventLoop.execute {
            self.stopped = true
            connection.close()
        }
    }

    private func fail(_ kind: String, _ message: String, _ connection: HTTPConnection) {
        guard !failed, !completed, !stopped else { return }
        failed = true
        errors.add(kind, message)
        progress?.followerFailed()
        if !sawBody { sawBody = true; ready?.countDown() }
        done?.countDown()
        connection.close()
    }

    func head(status: Int, connection: HTTPConnection) {
        self.status = status
        if status != 200 { fail("http_\(status)", "status \(status)", connection) }
    }

    func body(_ bytes: UnsafeRawBufferPointer, connection: HTTPConnection) {
        guard !failed, !completed else { return }
        if !sawBody {
            sawBody = true
            ready?.countDown()
        }
        checker.feed(bytes)
        if let error = checker.error {
            fail("wrong_text", error, connection)
            return
        }
        if firstTextAt == 0, checker.offset > 0 { firstTextAt = now() }
        let tokens = checker.offset / text.size
        if tokens > reported {
            progress?.advance(from: reported, to: tokens)
            reported = tokens
        }
        if checker.complete, live || system == .nchan { complete(connection) }
    }

    func end(connection: HTTPConnection) {
        guard !failed, !completed else { return }
        guard checker.complete else {
            fail("short", "the response ended at offset \(checker.offset) of \(text.total)", connection)
            return
        }
        fetches -= 1
        if fetches > 0 {
            checker = system.checker(text, live: live)
            connection.send(request)
        } else {
            complete(connection)
        }
    }

    private func complete(_ connection: HTTPConnection) {
        completed = true
        completedAt = now()
        done?.countDown()
        onComplete?(self)
        if closeWhenComplete { connection.close() }
    }

    func closed(connection: HTTPConnection) {
        fail("closed", "the connection closed at offset \(checker.offset) of \(text.total) (status \(status))", connection)
    }

    /// For a static client that fetches again: ready for the next round.
    func reset() {
        checker = system.checker(text, live: live)
        completed = false
        reported = 0
    }
}
