import AsyncHTTPClient
import Foundation
import Testing

/// Durable mode (`--durability redis`): every stream is also kept in Redis, so any instance reads
/// it whether or not its producer lives, a stream whose producer died ends as lost at its stored
/// length, and an ingest whose body broke off is continued from any instance.
extension FaultTests {
    /// A durable stream's producer instance is killed mid-stream. Its follower on B gets a clean
    /// prefix, then `producer_lost` at the length it read; afterwards B answers the same text and
    /// end to a new reader from 0 and from the middle, and HEAD says failed at that length.
    @Test func durableProducerKilledMidStream() async throws {
        try await FaultHarness.run { h in
            let (redis, a, b) = try await h.startRedisAndTwoServers(options: Self.durable())
            let demo = Demo(count: 200, intervalMs: 50)

            let creatorResponse = try await h.openStream(.POST, "\(a.base)/streams/lost", body: demo.body, "the creator on A")
            let creator = Observed(StreamRead())
            async let _ = EventStreamReader.read(creatorResponse, into: creator, timeout: .seconds(60))
            let follower = try await h.follow("\(b.base)/streams/lost", "the follower on B")
            _ = try h.require(await follower.wait(timeout: .seconds(10)) { $0.chunks >= 5 }, "the follower on B did not get 5 chunks within 10 s: \(follower.value)")

            a.process.killAndReap()

            let ended = try h.require(
                await follower.wait(timeout: Self.durableLossBound) { $0.finished },
                "the follower on B did not end within \(Self.durableLossBound.seconds) s of the kill: \(follower.value)"
            )
            let length = ended.text.utf16.count
            // Whole tokens only: each is a chunk, and the text stops between two.
            h.check(ended.text == Demo(count: ended.chunks, intervalMs: demo.intervalMs).text && demo.text.hasPrefix(ended.text),
                    "the follower on B: its text is not the stream's first \(ended.chunks) chunks: …\(ended.text.suffix(60))")
            h.check(ended.lastId == length, "the follower on B: its last id is \(ended.lastId), its text \(length) units long")
            let lost = EndEvent(status: "failed", offset: length, error: "producer_lost")
            h.check(ended.end == lost, "the follower on B: expected \(lost), got \(ended)")

            // Another reader gets the same, from the store.
            let again = try await h.readWhole("\(b.base)/streams/lost", "a new GET of the lost stream on B")
            h.checkText(again.text, ended.text, "a new GET of the lost stream on B")
            h.check(again.end == lost, "a new GET of the lost stream on B: expected \(lost), got \(again)")

            let head = await HTTP.send(.HEAD, "\(b.base)/streams/lost", timeout: .seconds(5))
            h.check(head.status == 200 && head.streamState == "failed" && head.streamLength == length && head.streamError == "producer_lost",
                    "HEAD of the lost stream on B: expected 200, Stream-State failed, Stream-Length \(length), Stream-Error producer_lost; got \(head) \(head.headers)")

            let middle = ended.ids[ended.ids.count / 2]
            let suffix = try await h.readWhole("\(b.base)/streams/lost?resumeAt=\(middle)", "a GET of the lost stream on B from \(middle)")
            h.checkText(suffix.text, ended.text.units(from: middle), "a GET of the lost stream on B from \(middle)")
            h.check(suffix.ids.first.map { $0 > middle } ?? false, "a GET of the lost stream on B from \(middle): its first id is \(suffix.ids.first.map(String.init) ?? "none")")
            h.check(suffix.end == lost, "a GET of the lost stream on B from \(middle): expected \(lost), got \(suffix)")
            try await h.checkKeysExpire(in: redis, logOf: "lost")
        }
    }

    /// A durable stream completes on A, A is killed, and its replay grace passes: B still serves
    /// it whole from 0, from an event id without a duplicate, and from its end; HEAD says finished
    /// with its length; and nothing the stream left in Redis is kept forever.
    @Test func durableStreamReadAfterItsGraceWithItsProducerGone() async throws {
        try await FaultHarness.run { h in
            let grace = Duration.seconds(1)
            let (redis, a, b) = try await h.startRedisAndTwoServers(options: Self.durable(replayGraceSeconds: 1))
            let demo = Demo(count: 30, intervalMs: 10)
            let length = demo.text.utf16.count

            let creatorResponse = try await h.openStream(.POST, "\(a.base)/streams/kept", body: demo.body, "the creator on A")
            let creator = Observed(StreamRead())
            async let _ = EventStreamReader.read(creatorResponse, into: creator, timeout: .seconds(30))
            _ = try h.require(await creator.wait(timeout: demo.duration + .seconds(10)) { $0.finished }, "the creator on A did not finish: \(creator.value)")
            h.checkComplete(creator.value, demo, "the creator on A")
            // The creator reads A's memory, which can be a batch ahead of the store: A dies once
            // the end is stored (HEAD on B reads the store), so that the stream is complete there.
            _ = await h.waitFor("the end is stored", since: .now, within: .seconds(10)) {
                let head = await HTTP.send(.HEAD, "\(b.base)/streams/kept", timeout: .seconds(5))
                return (head.headers.first(name: "Stream-State") == "finished", "\(head) \(head.headers)")
            }
            let completedAt = ContinuousClock.now
            a.process.killAndReap()
            // The fault's setting: the producer is gone and the stream is past its replay grace:
            // its sentinel, which a producer keeps live through the grace, has lapsed.
            _ = await h.waitFor("the dead producer's sentinel lapses", since: completedAt, within: grace + Self.lease + .seconds(3)) {
                let sentinel = try? await redis.command("EXISTS", "\(h.keyPrefix):rs:sentinel:kept")
                return (sentinel?.integerValue == 0, "EXISTS answered \(String(describing: sentinel))")
            }

            let whole = try await h.readWhole("\(b.base)/streams/kept", "a GET of the finished stream on B")
            h.checkComplete(whole, demo, "a GET of the finished stream on B")

            let seen = try h.require(whole.ids.dropLast().last, "a GET of the finished stream on B: too few events to resume from one: \(whole)")
            let middle = whole.ids[whole.ids.count / 2]
            let resumed = try await h.readWhole("\(b.base)/streams/kept", headers: [("Last-Event-ID", "\(middle)")], "a GET on B with Last-Event-ID \(middle)")
            h.checkText(resumed.text, demo.text.units(from: middle), "a GET on B with Last-Event-ID \(middle)")
            h.check(resumed.ids.first.map { $0 > middle } ?? false, "a GET on B with Last-Event-ID \(middle): its first id is \(resumed.ids.first.map(String.init) ?? "none")")
            h.check(resumed.end == EndEvent(status: "completed", offset: length, error: nil), "a GET on B with Last-Event-ID \(middle): expected end completed at \(length), got \(resumed)")
            // The last event but one: a resume near the end gets the one chunk left.
            let nearEnd = try await h.readWhole("\(b.base)/streams/kept", headers: [("Last-Event-ID", "\(seen)")], "a GET on B with Last-Event-ID \(seen)")
            h.checkText(nearEnd.text, demo.text.units(from: seen), "a GET on B with Last-Event-ID \(seen)")
            h.check(nearEnd.ids == [length], "a GET on B with Last-Event-ID \(seen): expected one event with id \(length), got ids \(nearEnd.ids)")

            let atEnd = try await h.readWhole("\(b.base)/streams/kept?resumeAt=\(length)", "a GET on B from the end")
            h.check(atEnd.chunks == 0 && atEnd.text.isEmpty && atEnd.end == EndEvent(status: "completed", offset: length, error: nil),
                    "a GET on B from the end (\(length)): expected only the end completed at \(length), got \(atEnd) with text \(atEnd.text.prefix(40).debugDescription)")

            let head = await HTTP.send(.HEAD, "\(b.base)/streams/kept", timeout: .seconds(5))
            h.check(head.status == 200 && head.streamState == "finished" && head.streamLength == length && head.streamError == nil,
                    "HEAD of the finished stream on B: expected 200, Stream-State finished, Stream-Length \(length), no Stream-Error; got \(head) \(head.headers)")

            try await h.checkKeysExpire(in: redis, logOf: "kept")
        }
    }

    /// An ingest on A, its body a series of lines with characters of one to four bytes (and one
    /// or two UTF-16 units), is followed on B; A is killed halfway. Past the stored length a
    /// continuation is refused with the length; a continuation from B that resends the last line
    /// gets in once A's lease has run out, and the follower reads the whole text exactly once.
    @Test func ingestKilledHalfwayIsContinuedOnAnotherInstance() async throws {
        try await FaultHarness.run { h in
            let (redis, a, b) = try await h.startRedisAndTwoServers(options: Self.durable(ingestReattachSeconds: 10))
            let lines = Self.lines(count: 12)
            let source = lines.joined()
            let half = 6

            let ingest = try await ChunkedIngest.open(in: h, port: a.port, stream: "halfway", "the ingest on A")
            ingest.send(lines[0])
            try await h.waitForStoredLength(of: "halfway", on: b, lines[0].utf16.count, within: .seconds(5))
            let follower = try await h.follow("\(b.base)/streams/halfway", "the follower on B")
            for line in lines[1..<half] { ingest.send(line) }
            let sent = lines[..<half].joined()
            let stored = sent.utf16.count
            try await h.waitForStoredLength(of: "halfway", on: b, stored, within: .seconds(5))
            _ = try h.require(await follower.wait(timeout: .seconds(5)) { $0.text.utf16.count >= stored }, "the follower on B did not get the first \(half) lines: \(follower.value)")
            h.check(ingest.answerSoFar == nil, "the ingest on A answered before its body ended: \(ingest.answerSoFar?.description ?? "")")

            a.process.killAndReap()
            let killedAt = ContinuousClock.now
            let waiting = await HTTP.send(.HEAD, "\(b.base)/streams/halfway", timeout: .seconds(5))
            h.check(waiting.status == 200 && waiting.streamState == "live" && waiting.streamLength == stored,
                    "HEAD on B of the stream whose producer was killed: expected live at \(stored) while it may be continued, got \(waiting) \(waiting.headers)")

            // A's writer holds the stream until its lease runs out (renewed every third of it, so
            // most of it is left now); then the offset is judged.
            var answers: [Answer] = []
            await h.waitFor("a continuation on B past the stored length is no longer refused as stream_has_producer", since: killedAt, within: Self.lease + .seconds(3)) {
                let answer = await HTTP.send(.POST, "\(b.base)/streams/halfway/ingest", body: "x", headers: [("Stream-Offset", "\(stored + 5)")], timeout: .seconds(5))
                answers.append(answer)
                return (answer.errorCode != "stream_has_producer", answer.description)
            }
            let held = try h.require(answers.first, "no answer to a continuation past the stored length")
            h.checkRefusal(held, "a continuation on B just after A was killed, within its lease", status: 409, code: "stream_has_producer", within: Self.answerBound)
            let refused = try h.require(answers.last, "no answer to a continuation past the stored length")
            h.checkRefusal(refused, "a continuation on B at \(stored + 5), past the \(stored) units stored", status: 409, code: "offset_beyond_length", within: Self.answerBound)
            h.check(refused.streamLength == stored, "a continuation on B past the stored length: expected Stream-Length \(stored), got \(refused.headers.first(name: "Stream-Length") ?? "none")")

            // The client does not know whether its last line was stored: it sends it again, and
            // the server drops what it has. Pieces of 7 bytes split characters across chunks.
            let resumeAt = stored - lines[half - 1].utf16.count
            let resend = Array(lines[(half - 1)...].joined().utf8)
            var continued: Answer?
            await h.waitFor("a continuation on B from \(resumeAt) gets in", since: killedAt, within: Self.lease + .seconds(3)) {
                guard let continuation = try? await ChunkedIngest.open(in: h, port: b.port, stream: "halfway", offset: resumeAt, "the continuation on B") else {
                    return (false, "could not connect to B")
                }
                defer { continuation.close() }
                for start in stride(from: 0, to: resend.count, by: 7) {
                    continuation.send(bytes: Array(resend[start..<min(start + 7, resend.count)]))
                }
                continuation.end()
                let answer = await continuation.answer(within: .seconds(10))
                continued = answer
                return (answer.map { $0.errorCode != "stream_has_producer" } ?? false, answer?.description ?? "no answer within 10 s")
            }
            let answer = try h.require(continued, "no answer to the continuation on B")
            h.check(answer.status == 200 && answer.ingestSummary == IngestSummary(id: "halfway", state: "completed", length: source.utf16.count),
                    "the continuation on B: expected 200 with {\"id\":\"halfway\",\"state\":\"completed\",\"length\":\(source.utf16.count)}, got \(answer)")

            let whole = try h.require(await follower.wait(timeout: .seconds(10)) { $0.finished }, "the follower on B did not end after the continuation: \(follower.value)")
            h.checkText(whole.text, source, "the follower on B")
            h.check(zip(whole.ids, whole.ids.dropFirst()).allSatisfy { $0 < $1 } && whole.lastId == source.utf16.count,
                    "the follower on B: event ids not increasing to \(source.utf16.count): \(whole.ids)")
            h.check(whole.end == EndEvent(status: "completed", offset: source.utf16.count, error: nil), "the follower on B: expected end completed at \(source.utf16.count), got \(whole)")
            let again = try await h.readWhole("\(b.base)/streams/halfway", "a new GET of the continued stream on B")
            h.checkText(again.text, source, "a new GET of the continued stream on B")
            try await h.checkKeysExpire(in: redis, logOf: "halfway")
        }
    }

    /// An ingest's connection breaks (its instance lives): the stream waits to be continued. Two
    /// continuations at once, on A and on B, each holding its body open: exactly one gets in and
    /// its text goes on the stream, the other is refused as `stream_has_producer`.
    @Test func twoConcurrentContinuationsOneWins() async throws {
        try await FaultHarness.run { h in
            let (redis, a, b) = try await h.startRedisAndTwoServers(options: Self.durable(ingestReattachSeconds: 10))
            let lines = Self.lines(count: 8)
            let first = lines[..<3].joined()
            let stored = first.utf16.count

            let ingest = try await ChunkedIngest.open(in: h, port: a.port, stream: "contested", "the ingest on A")
            for line in lines[..<3] { ingest.send(line) }
            try await h.waitForStoredLength(of: "contested", on: b, stored, within: .seconds(5))
            let follower = try await h.follow("\(b.base)/streams/contested", "the follower on B")
            ingest.close()
            let brokeAt = ContinuousClock.now

            // Once A has left the stream, a continuation is judged on its offset (this one is
            // past the end, and changes nothing), no longer refused for A's sake.
            await h.waitFor("the stream waits for a continuation after its ingest broke off", since: brokeAt, within: .seconds(3)) {
                let answer = await HTTP.send(.POST, "\(b.base)/streams/contested/ingest", body: "x", headers: [("Stream-Offset", "\(stored + 5)")], timeout: .seconds(5))
                return (answer.errorCode == "offset_beyond_length", answer.description)
            }
            for server in [a, b] {
                let head = await HTTP.send(.HEAD, "\(server.base)/streams/contested", timeout: .seconds(5))
                h.check(head.status == 200 && head.streamState == "live" && head.streamLength == stored,
                        "HEAD on \(server.name) of the stream waiting to be continued: expected live at \(stored), got \(head) \(head.headers)")
            }

            let pieces = ["A": "from A: caf\u{E9}\n", "B": "from B: \u{1F389}\n"]
            async let openedOnA = ChunkedIngest.open(in: h, port: a.port, stream: "contested", offset: stored, "the continuation on A")
            async let openedOnB = ChunkedIngest.open(in: h, port: b.port, stream: "contested", offset: stored, "the continuation on B")
            let continuations = try await ["A": openedOnA, "B": openedOnB]
            for (name, continuation) in continuations { continuation.send(pieces[name] ?? "") }

            // The loser is answered at once; the winner's answer waits for its body's end.
            let firstAnswer = await withTaskGroup(of: (String, Answer)?.self) { group in
                for (name, continuation) in continuations {
                    group.addTask { await continuation.answer(within: Self.answerBound).map { (name, $0) } }
                }
                for await answer in group where answer != nil {
                    group.cancelAll()
                    return answer
                }
                return nil
            }
            let (loserName, loser) = try h.require(firstAnswer, "neither continuation was answered within \(Self.answerBound.seconds) s")
            let winnerName = loserName == "A" ? "B" : "A"
            let winner = try h.require(continuations[winnerName], "no continuation on \(winnerName)")
            h.checkRefusal(loser, "the continuation on \(loserName) beside the one on \(winnerName)", status: 409, code: "stream_has_producer", within: Self.answerBound)

            let winnerText = first + (pieces[winnerName] ?? "")
            let got = await follower.wait(timeout: .seconds(5)) { $0.text.utf16.count >= winnerText.utf16.count || $0.finished }
            h.checkText(got?.text ?? follower.value.text, winnerText, "the follower on B after the continuation on \(winnerName) sent its first piece")
            h.check(winner.answerSoFar == nil, "the continuation on \(winnerName) was answered while its body was still open: \(winner.answerSoFar?.description ?? "")")

            let rest = lines[3...].joined()
            winner.send(rest)
            winner.end()
            let expected = winnerText + rest
            let done = try h.require(await winner.answer(within: .seconds(10)), "the continuation on \(winnerName) was not answered after its body ended")
            h.check(done.status == 200 && done.ingestSummary == IngestSummary(id: "contested", state: "completed", length: expected.utf16.count),
                    "the continuation on \(winnerName): expected 200 with length \(expected.utf16.count), got \(done)")
            for continuation in continuations.values { continuation.close() }

            let whole = try h.require(await follower.wait(timeout: .seconds(10)) { $0.finished }, "the follower on B did not end: \(follower.value)")
            h.checkText(whole.text, expected, "the follower on B")
            h.check(whole.end == EndEvent(status: "completed", offset: expected.utf16.count, error: nil), "the follower on B: expected end completed at \(expected.utf16.count), got \(whole)")
            let onA = try await h.readWhole("\(a.base)/streams/contested", "a GET of the continued stream on A")
            h.checkText(onA.text, expected, "a GET of the continued stream on A")
            // Ended for every instance alike, the winner's own too, though it is in its replay grace.
            for server in [a, b] {
                let head = await HTTP.send(.HEAD, "\(server.base)/streams/contested", timeout: .seconds(5))
                h.check(head.status == 200 && head.streamState == "finished" && head.streamLength == expected.utf16.count,
                        "HEAD of the continued stream on \(server.name): expected finished at \(expected.utf16.count), got \(head) \(head.headers)")
            }
            try await h.checkKeysExpire(in: redis, logOf: "contested")
        }
    }

    /// An ingest's connection breaks and nobody continues it: after the reattach window its
    /// followers, on the producer's instance and on another, end with `producer_lost` at the
    /// stored length, and a continuation is refused as `stream_done`.
    @Test func detachedIngestEndsLostAfterItsReattachWindow() async throws {
        try await FaultHarness.run { h in
            let reattach = Duration.seconds(2)
            let (redis, a, b) = try await h.startRedisAndTwoServers(options: Self.durable(ingestReattachSeconds: 2))
            let lines = Self.lines(count: 3)
            let sent = lines.joined()
            let stored = sent.utf16.count

            let ingest = try await ChunkedIngest.open(in: h, port: a.port, stream: "abandoned", "the ingest on A")
            for line in lines { ingest.send(line) }
            try await h.waitForStoredLength(of: "abandoned", on: b, stored, within: .seconds(5))
            let onA = try await h.follow("\(a.base)/streams/abandoned", "the follower on A")
            let onB = try await h.follow("\(b.base)/streams/abandoned", "the follower on B")
            ingest.close()
            let brokeAt = ContinuousClock.now

            // The window, the lease of a writer that may still hold it, an idle follower's check.
            let bound = reattach + Self.lease + Self.watchdog + .seconds(3)
            let lost = EndEvent(status: "failed", offset: stored, error: "producer_lost")
            for (name, follower) in [("A", onA), ("B", onB)] {
                let ended = await follower.wait(timeout: bound - (ContinuousClock.now - brokeAt)) { $0.finished }
                h.check(ended?.end == lost, "the follower on \(name): expected \(lost) within \(bound.seconds) s of the break, got \(follower.value)")
                h.checkText(follower.value.text, sent, "the follower on \(name)")
            }

            let late = await HTTP.send(.POST, "\(b.base)/streams/abandoned/ingest", body: "late", headers: [("Stream-Offset", "\(stored)")], timeout: .seconds(5))
            h.checkRefusal(late, "a continuation on B after the reattach window", status: 409, code: "stream_done", within: Self.answerBound)
            for server in [a, b] {
                let head = await HTTP.send(.HEAD, "\(server.base)/streams/abandoned", timeout: .seconds(5))
                h.check(head.status == 200 && head.streamState == "failed" && head.streamLength == stored && head.streamError == "producer_lost",
                        "HEAD of the abandoned stream on \(server.name): expected failed at \(stored) with producer_lost, got \(head) \(head.headers)")
            }
            try await h.checkKeysExpire(in: redis, logOf: "abandoned")
        }
    }
}

extension FaultTests {
    /// The follower's watchdog interval (no flag sets it): an idle follower asks the store this
    /// often whether its stream ended or lost its producer.
    static let watchdog = Duration.seconds(5)
    /// How long a durable follower may wait to learn that its producer died: the lease runs out
    /// within one watchdog interval (it is shorter), the next check records the loss; a margin.
    static let durableLossBound = watchdog * 2 + lease + .seconds(2)

    /// Instances in durable mode, with a retention short enough that a test's keys go soon.
    static func durable(replayGraceSeconds: Int? = nil, ingestReattachSeconds: Int? = nil) -> ServerOptions {
        var options = ServerOptions()
        options.durability = "redis"
        options.retentionSeconds = 120
        if let replayGraceSeconds { options.replayGraceSeconds = replayGraceSeconds }
        options.ingestReattachSeconds = ingestReattachSeconds
        return options
    }

    /// Distinct lines whose characters take one, two, three and four UTF-8 bytes (é, 日, 🎉), so
    /// that offsets in UTF-16 units, bytes and characters all differ.
    static func lines(count: Int) -> [String] {
        (1...count).map { n in
            "line \(n) caf" + String(repeating: "\u{E9}", count: n % 3 + 1) + " \u{65E5}\u{672C} " + String(repeating: "\u{1F389}", count: n % 2 + 1) + "\n"
        }
    }
}

/// The JSON answer of an ingest whose body ended.
struct IngestSummary: Decodable, Equatable {
    let id: String
    let state: String
    let length: Int
}

extension Answer {
    var streamLength: Int? { headers.first(name: "Stream-Length").flatMap(Int.init) }
    var streamError: String? { headers.first(name: "Stream-Error") }
    var ingestSummary: IngestSummary? { try? JSONDecoder().decode(IngestSummary.self, from: Data(body.utf8)) }
}

extension RedisProcess.Reply {
    var integerValue: Int? { if case .integer(let value) = self { value } else { nil } }
}

extension String {
    /// What follows the first `offset` UTF-16 units: a stream's text from an offset.
    func units(from offset: Int) -> String {
        String(decoding: Array(utf16.dropFirst(offset)), as: UTF16.self)
    }
}

extension FaultHarness {
    /// Opens `url` (a GET, with `headers`) and reads its events beside the test, until the
    /// response ends or `timeout`.
    /// A redis-server of this test's, and instances A and B on it.
    func startRedisAndTwoServers(options: ServerOptions) async throws -> (RedisProcess, ServerProcess, ServerProcess) {
        let redis = try await startRedis()
        let a = try await startServer("A", redis: redis, options: options)
        let b = try await startServer("B", redis: redis, options: options)
        return (redis, a, b)
    }

    func follow(_ url: String, headers: [(String, String)] = [], _ what: String, timeout: Duration = .seconds(60), sourceLocation: SourceLocation = #_sourceLocation) async throws -> Observed<StreamRead> {
        let response = try await openStream(.GET, url, headers: headers, what, timeout: timeout, sourceLocation: sourceLocation)
        let read = Observed(StreamRead())
        background { await EventStreamReader.read(response, into: read, timeout: timeout) }
        return read
    }

    /// The whole of a stream that has ended, read from `url`.
    func readWhole(_ url: String, headers: [(String, String)] = [], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> StreamRead {
        let read = try await follow(url, headers: headers, what, timeout: .seconds(20), sourceLocation: sourceLocation)
        return try require(await read.wait(timeout: .seconds(20)) { $0.finished }, "\(what): not ended within 20 s: \(read.value)", sourceLocation: sourceLocation)
    }

    /// Waits until HEAD on `server` says the stream holds `length` units.
    func waitForStoredLength(of id: String, on server: ServerProcess, _ length: Int, within bound: Duration, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let held = await waitFor("HEAD of \(id) on \(server.name) says Stream-Length \(length)", since: .now, within: bound, sourceLocation: sourceLocation) {
            let answer = await HTTP.send(.HEAD, "\(server.base)/streams/\(id)", timeout: .seconds(2))
            return (answer.status == 200 && answer.streamLength == length, "\(answer) Stream-Length \(answer.streamLength.map(String.init) ?? "none")")
        }
        if held == nil { throw Stop(message: "\(id) never held \(length) units") }
    }

    /// Every key of this test's prefix in `redis` expires by itself (a store of streams must not
    /// grow forever), and the log of stream `id` is among them.
    func checkKeysExpire(in redis: RedisProcess, logOf id: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let keys = try await redis.command("KEYS", "\(keyPrefix)*")
        guard case .array(let names) = keys else {
            fail("KEYS answered \(keys)", sourceLocation: sourceLocation)
            return
        }
        let found = names.compactMap { name -> String? in if case .bulk(let text?) = name { text } else { nil } }
        check(found.contains("\(keyPrefix):rs:log:\(id)"), "the log of \(id) is not in Redis; the keys are \(found)", sourceLocation: sourceLocation)
        for key in found {
            let ttl = try await redis.command("TTL", key)
            // -1 is a key without an expiry. A dead producer's sentinel may be about to expire
            // (0, its lease nearly over) or gone between KEYS and TTL (-2).
            check(ttl.integerValue.map { $0 != -1 } ?? false, "the key \(key) has TTL \(ttl): it would stay after the stream's retention", sourceLocation: sourceLocation)
        }
    }

    /// `got` is `expected` unit for unit (not merely equivalent as Unicode); else an issue that
    /// shows where they part.
    func checkText(_ got: String, _ expected: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let gotUnits = Array(got.utf16), expectedUnits = Array(expected.utf16)
        guard gotUnits != expectedUnits else { return }
        let common = zip(gotUnits, expectedUnits).prefix { $0 == $1 }.count
        fail("\(what): the text (\(gotUnits.count) units) differs from the expected (\(expectedUnits.count) units) after \(common) units: got …\(got.units(from: max(common - 20, 0)).prefix(60).debugDescription), expected …\(expected.units(from: max(common - 20, 0)).prefix(60).debugDescription)", sourceLocation: sourceLocation)
    }
}
