import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ResumableStream
import Testing
import TestSupport

/// Every refusal has its status and a JSON body that names what was wrong, and leaves nothing
/// behind: no producer, no reader, no subscription.
@Suite(.timeLimit(.minutes(2)))
struct BadInputTests {
    struct Case: CustomStringConvertible, Sendable {
        let method: HTTPMethod
        let path: String
        let body: String?
        let headers: [(String, String)]
        let status: Int
        let error: String

        init(_ method: HTTPMethod, _ path: String, body: String? = nil, headers: [(String, String)] = [], _ status: Int, _ error: String) {
            (self.method, self.path, self.body, self.headers, self.status, self.error) = (method, path, body, headers, status, error)
        }

        var description: String { "\(method) \(path.prefix(60)) → \(status) \(error)" }
    }

    static let demo = #"{"source":"demo","parameters":{"count":2,"intervalMs":0}}"#

    static let cases: [Case] = [
        Case(.POST, "/streams/a", body: "not json", 400, "invalid_json"),
        Case(.POST, "/streams/a", body: "[1,2]", 400, "invalid_json"),
        Case(.POST, "/streams/a", body: "{}", 422, "invalid_body"),
        Case(.POST, "/streams/a", body: #"{"source":7}"#, 422, "invalid_body"),
        Case(.POST, "/streams/a", body: #"{"source":"nope"}"#, 422, "unknown_source"),
        Case(.POST, "/streams/a", body: #"{"source":"demo","parameters":{"count":"ten"}}"#, 422, "invalid_parameters"),
        Case(.POST, "/streams/a", body: #"{"source":"demo","parameters":{"count":-1}}"#, 422, "invalid_parameters"),
        Case(.POST, "/streams/a", body: #"{"source":"demo","parameters":{"tokenSize":0}}"#, 422, "invalid_parameters"),
        Case(.POST, "/streams/a", body: #"{"source":"demo","pad":"\#(String(repeating: "x", count: 70_000))"}"#, 413, "body_too_large"),
        Case(.POST, "/streams/a?format=xml", body: demo, 400, "invalid_format"),
        Case(.POST, "/streams/" + String(repeating: "x", count: 300), body: demo, 400, "invalid_stream_id"),
        Case(.POST, "/streams/a%01b", body: demo, 400, "invalid_stream_id"),
        // Hummingbird's router matches no route for this; the answer is JSON all the same. (An id
        // that is not UTF-8, `/streams/a%ff`, is in APIConformanceTests: this client sends `/`.)
        Case(.GET, "/nowhere", 404, "not_found"),
        // A path that exists, with a method it does not have.
        Case(.PUT, "/streams/a", body: demo, 405, "method_not_allowed"),
        Case(.POST, "/streams/a", body: #"{"source":"proxy","parameters":{"url":"http://127.0.0.1:1/x"}}"#, 403, "source_forbidden"),
        Case(.POST, "/streams/a", body: #"{"source":"proxy","parameters":{"url":"ftp://example.com/"}}"#, 422, "invalid_parameters"),
        Case(.POST, "/streams/a", body: #"{"source":"proxy","parameters":{}}"#, 422, "invalid_parameters"),
        Case(.GET, "/streams/unknown", 404, "stream_not_found"),
        Case(.GET, "/streams/unknown/status", 404, "stream_not_found"),
        Case(.DELETE, "/streams/unknown", 404, "stream_not_found"),
        Case(.GET, "/streams/a?resumeAt=-1", 400, "invalid_offset"),
        Case(.GET, "/streams/a?resumeAt=abc", 400, "invalid_offset"),
        Case(.GET, "/streams/a?resumeAt=99999999999999999999", 400, "invalid_offset"),
        Case(.GET, "/streams/a", headers: [("Last-Event-ID", "1.5")], 400, "invalid_offset"),
        Case(.GET, "/streams/a?format=json", 400, "invalid_format"),
    ]

    @Test(arguments: cases)
    func isRefusedWithItsStatusAndError(_ bad: Case) async throws {
        try await withServers(1) { servers in
            let (status, object) = try await Client.json(bad.method, servers[0].base + bad.path, body: bad.body, headers: bad.headers)
            #expect(status == bad.status)
            #expect(object["error"] as? String == bad.error)
            #expect((object["message"] as? String)?.isEmpty == false)
            try await expectNothingLeft(servers[0])
        }
    }

    @Test func existingLiveAndFinishedIdsAreConflictsAndFinishedStreamsAreDone() async throws {
        try await withServers(2, sources: Gate.sources) { servers in
            let gate = Gate.make()
            let creator = try await Client.create(servers[0].base, "taken", body: gate.body)
            var (status, object) = try await Client.json(.POST, "\(servers[1].base)/streams/taken", body: Self.demo)
            #expect(status == 409)
            #expect(object["error"] as? String == "stream_exists")
            #expect(object["state"] as? String == "live")
            gate.send("abc")
            gate.finish()
            _ = try await Client.read(creator)
            // In the replay grace, an offset past the end of the finished stream: refused where the
            // producer runs; another instance finds out as it reads, and says so at the end.
            (status, object) = try await Client.json(.GET, "\(servers[0].base)/streams/taken?resumeAt=4")
            #expect(status == 416)
            #expect(object["error"] as? String == "invalid_offset")
            let remote = try await Client.follow(servers[1].base, "taken", query: "?resumeAt=4")
            if remote.status == .rangeNotSatisfiable {
                // The end had reached that instance before the check.
                _ = try await remote.body.collect(upTo: 1 << 16)
            } else {
                let read = try await Client.read(remote)
                #expect(read.end?.status == "failed")
                #expect(read.end?.error == "invalid_offset")
            }
            // Cancelling a stream in its grace ends the grace; the stream stays completed.
            try await servers[0].context.cancel("taken")
            await servers[0].context.waitForProducer("taken")
            (status, object) = try await Client.json(.POST, "\(servers[1].base)/streams/taken", body: Self.demo)
            #expect(status == 409)
            #expect(object["state"] as? String == "finished")
            (status, object) = try await Client.json(.GET, "\(servers[1].base)/streams/taken")
            #expect(status == 422)
            #expect(object["message"] as? String == "Stream is already done")
            for server in servers { try await expectNothingLeft(server) }
        }
    }

    /// A finished stream in its replay grace takes no producer's place: the limit counts sources.
    @Test func streamsInTheirReplayGraceDoNotCountAgainstTheStreamLimit() async throws {
        try await withServers(1, sources: Gate.sources, { $0.maxStreams = 1; $0.replayGrace = .seconds(60) }) { servers in
            let base = servers[0].base
            let gate = Gate.make()
            let first = try await Client.create(base, "first", body: gate.body)
            let (status, object) = try await Client.json(.POST, "\(base)/streams/second", body: Self.demo)
            #expect(status == 503)
            #expect(object["error"] as? String == "too_many_streams")
            gate.send("done")
            gate.finish()
            #expect(try await Client.read(first).end?.status == "completed")
            #expect(servers[0].context.activeStreams == (0, 1, 0))
            let second = try await Client.create(base, "second", body: Self.demo)
            #expect(try await Client.read(second).end?.status == "completed")
            // Both still answer from memory in their grace.
            let resumed = try await Client.read(try await Client.follow(base, "first"))
            #expect(resumed.text == "done")
            for id in ["first", "second"] {
                try await servers[0].context.cancel(id)
                await servers[0].context.waitForProducer(id)
            }
            try await expectNothingLeft(servers[0])
        }
    }

    @Test func tooManyStreamsAndTooManyReaders() async throws {
        try await withServers(1, sources: Gate.sources, { $0.maxStreams = 1; $0.maxReaders = 2; $0.replayGrace = .zero }) { servers in
            let base = servers[0].base
            let gate = Gate.make()
            let creator = try await Client.create(base, "one", body: gate.body)
            var (status, object) = try await Client.json(.POST, "\(base)/streams/two", body: Self.demo)
            #expect(status == 503)
            #expect(object["error"] as? String == "too_many_streams")
            let follower = try await Client.follow(base, "one")
            (status, object) = try await Client.json(.GET, "\(base)/streams/one")
            #expect(status == 503)
            #expect(object["error"] as? String == "too_many_readers")
            gate.finish()
            _ = try await Client.read(creator)
            _ = try await Client.read(follower)
            try await expectNothingLeft(servers[0])
        }
    }

    @Test func upstreamFailuresAreBadGateways() async throws {
        try await withUpstream { upstream in
            try await withServers(1, { $0.proxyAllowedOrigins = [upstream.origin, "http://127.0.0.1:1"] }) { servers in
                func create(_ url: String) async throws -> (Int, [String: Any]) {
                    try await Client.json(.POST, "\(servers[0].base)/streams/up-\(UUID().uuidString)", body: #"{"source":"proxy","parameters":{"url":"\#(url)"}}"#)
                }
                var (status, object) = try await create("\(upstream.origin)/status/500")
                #expect(status == 502)
                #expect(object["error"] as? String == "upstream_failed")
                (status, object) = try await create("http://127.0.0.1:1/nothing-listens")
                #expect(status == 502)
                #expect(object["error"] as? String == "upstream_failed")
                try await expectNothingLeft(servers[0])
            }
        }
    }
}

/// No producer, no mirror, no reader, and no buffered byte left in `server`.
func expectNothingLeft(_ server: TestServer, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    try await eventually(sourceLocation: sourceLocation) {
        server.routes.activeReaders == 0 && server.context.activeStreams == (0, 0, 0)
    }
}
