import AsyncHTTPClient
import Foundation
import NIOCore
import ResumableStream
import ResumableStreamHTTP
import Testing
import TestSupport

/// The service over real sockets: two instances on the test command's redis-server, clients
/// over HTTP.
@Suite(.timeLimit(.minutes(2)))
struct ServiceTests {
    @Test func resumesOnAnotherInstanceAtTheStartInAChunkAndAtTheEnd() async throws {
        try await withServers(2, sources: Gate.sources) { servers in
            let (first, second) = (servers[0], servers[1])
            let gate = Gate.make()
            let creator = try await Client.create(first.base, "s1", body: gate.body)
            #expect(creator.status == .ok)
            #expect(creator.headers.first(name: "Content-Type") == "text/event-stream; charset=utf-8")
            #expect(creator.headers.first(name: "Cache-Control") == "no-cache")
            #expect(creator.headers.first(name: "X-Accel-Buffering") == "no")
            let creatorRead = Task { try await Client.read(creator) }

            // A follower on the second instance, while the source runs: each chunk reaches it
            // before the next one exists.
            gate.send("Hello, ")
            let follower = try await Client.follow(second.base, "s1")
            var events = EventStream(body: follower.body).makeAsyncIterator()
            #expect(try await events.next()?.data == "Hello, ")
            let chunks = ["wörld", " 🌍", "\nnew line", "!"]
            var expectedOffset = 7
            for chunk in chunks {
                gate.send(chunk)
                let event = try await events.next()
                expectedOffset += chunk.utf16.count
                #expect(event?.data == chunk)
                #expect(event?.id == String(expectedOffset))
            }
            gate.finish()
            let end = try await events.next()
            #expect(end?.name == "end")
            #expect(end?.data == #"{"offset":\#(expectedOffset),"status":"completed"}"#)

            let text = "Hello, wörld 🌍\nnew line!"
            #expect(try await creatorRead.value.text == text)
            // From the start, from inside a chunk ("wö|rld"), and from the end.
            let fromStart = try await Client.read(Client.follow(second.base, "s1", query: "?resumeAt=0"))
            #expect(fromStart.text == text)
            #expect(fromStart.end?.status == "completed")
            let fromMiddle = try await Client.read(Client.follow(second.base, "s1", query: "?resumeAt=9"))
            #expect(fromMiddle.text == String(text.utf16.dropFirst(9))!)
            // Another instance gets what was buffered as one piece: chunk boundaries are the
            // producer's business, offsets are exact.
            #expect(fromMiddle.ids.last == text.utf16.count)
            let fromEnd = try await Client.read(Client.follow(second.base, "s1", query: "?resumeAt=\(text.utf16.count)"))
            #expect(fromEnd.text == "")
            #expect(fromEnd.end == StreamEnd(status: "completed", offset: text.utf16.count, error: nil))
        }
    }

    @Test func lastEventIdResumesWithoutGapOrDuplicate() async throws {
        try await withServers(2) { servers in
            let body = #"{"source":"demo","parameters":{"count":40,"intervalMs":10}}"#
            // The client cuts its connection after five chunks.
            let cut = try await Client.read(Client.create(servers[0].base, "s2", body: body), stopAfter: 5)
            #expect(cut.end == nil)
            let lastId = try #require(cut.lastId)
            // A browser reconnects to the URL it opened first, with the id of the last event.
            let rest = try await Client.read(Client.follow(servers[1].base, "s2", query: "?resumeAt=3", lastEventId: lastId))
            #expect(cut.text + rest.text == demoText(40))
            #expect(rest.end?.status == "completed")
        }
    }

    @Test func aClientThatLeavesDoesNotStopTheProducer() async throws {
        try await withServers(1) { servers in
            let server = servers[0]
            let body = #"{"source":"demo","parameters":{"count":30,"intervalMs":5}}"#
            _ = try await Client.read(Client.create(server.base, "s3", body: body), stopAfter: 2)
            // The source runs to its end with nobody reading it.
            await server.context.waitForProducer("s3")
            try await eventually { server.routes.activeReaders == 0 }
        }
        // With the replay grace the whole stream is still there afterwards, on a new instance too.
        try await withServers(2) { servers in
            let body = #"{"source":"demo","parameters":{"count":30,"intervalMs":5}}"#
            _ = try await Client.read(Client.create(servers[0].base, "s3b", body: body), stopAfter: 1)
            let later = try await Client.read(Client.follow(servers[1].base, "s3b"))
            #expect(later.text == demoText(30))
            #expect(later.end?.status == "completed")
        }
    }

    @Test func deleteOnAnotherInstanceCancelsTheProducer() async throws {
        try await withServers(2) { servers in
            let body = #"{"source":"demo","parameters":{"count":100000,"intervalMs":20}}"#
            let creator = try await Client.create(servers[0].base, "s4", body: body)
            let started = Tally()
            let reading = Task { try await Client.read(creator) { _ in started.add() } }
            await started.wait(until: 1)
            let (status, object) = try await Client.json(.DELETE, "\(servers[1].base)/streams/s4")
            #expect(status == 202)
            #expect(object["cancelled"] as? Bool == true)
            let read = try await reading.value
            #expect(read.end?.status == "cancelled")
            await servers[0].context.waitForProducer("s4")
            #expect(servers[0].context.activeStreams.producing == 0)
            // A cancelled stream is over: deleting it again says so, once Redis has taken the
            // producer's UNSUBSCRIBE (until then the cancellation reaches its subscription and is
            // accepted, and does nothing).
            try await eventually { try await Client.json(.DELETE, "\(servers[1].base)/streams/s4").status == 422 }
        }
    }

    @Test func aFailedStreamEndsWithAnEventThatSaysSo() async throws {
        try await withServers(1, redis: false) { servers in
            let body = #"{"source":"demo","parameters":{"count":10,"intervalMs":0,"failAfter":3}}"#
            let read = try await Client.read(Client.create(servers[0].base, "s5", body: body))
            #expect(read.text == demoText(3))
            #expect(read.end?.status == "failed")
            #expect(read.end?.error == "source_failed")
        }
    }

    @Test func heartbeatsKeepAnIdleStreamAlive() async throws {
        try await withServers(1, redis: false, sources: Gate.sources, { $0.heartbeatInterval = .milliseconds(50) }) { servers in
            let gate = Gate.make()
            let response = try await Client.create(servers[0].base, "s6", body: gate.body)
            var body = response.body.makeAsyncIterator()
            var seen = ""
            // The retry field first, then heartbeat comments while the source says nothing.
            while !seen.contains(": heartbeat\n\n: heartbeat\n\n") {
                guard let piece = try await body.next() else { break }
                seen += String(buffer: piece)
            }
            #expect(seen.hasPrefix("retry: 1000\n\n"))
            #expect(seen.contains(": heartbeat\n\n: heartbeat\n\n"))
            gate.finish()
        }
    }

    @Test func rawModePassesChunksThroughAndCountsOffsetsOverThem() async throws {
        try await withServers(2, sources: Gate.sources) { servers in
            let gate = Gate.make()
            let chunks = ["data: one\r\n\r\n", "data: twö\r\n\r\n", "event: x\ndata: 🌍\n\n"]
            chunks.forEach(gate.send)
            gate.finish()
            let created = try await Client.create(servers[0].base, "s7", body: gate.body, query: "?format=raw")
            let raw = String(buffer: try await created.body.collect(upTo: 1 << 20))
            #expect(raw == chunks.joined())
            let resumed = try await Client.follow(servers[1].base, "s7", query: "?format=raw&resumeAt=13")
            #expect(String(buffer: try await resumed.body.collect(upTo: 1 << 20)) == String(chunks.joined().utf16.dropFirst(13))!)
        }
    }

    @Test func ingestStreamsARequestBodyIntoANewStream() async throws {
        try await withServers(2) { servers in
            let upload = try await RawConnection.connect(port: servers[0].port)
            try await upload.write("POST /streams/s8/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            let answer = Task { try await upload.readToClose() }
            // A follower on the other instance sees each piece while the upload goes on; a
            // character split between two pieces arrives whole.
            try await upload.writeChunk(Array("first piece, ".utf8))
            try await eventually { try await servers[1].context.state(of: "s8") == .live }
            let follower = try await Client.follow(servers[1].base, "s8")
            var events = EventStream(body: follower.body).makeAsyncIterator()
            #expect(try await events.next()?.data == "first piece, ")
            let euro = Array("€".utf8)
            try await upload.writeChunk(Array("second ".utf8) + euro[..<1])
            #expect(try await events.next()?.data == "second ")
            try await upload.writeChunk(Array(euro[1...]) + Array(" end".utf8))
            #expect(try await events.next()?.data == "€ end")
            try await upload.write("0\r\n\r\n")
            #expect(try await events.next()?.name == "end")
            let response = try await answer.value
            #expect(response.hasPrefix("HTTP/1.1 201 Created\r\n"))
            #expect(response.hasSuffix(#"{"id":"s8","length":\#("first piece, second € end".utf16.count),"state":"completed"}"#))
            // The id is taken now.
            #expect(try await Client.json(.POST, "\(servers[1].base)/streams/s8/ingest", body: "again").status == 409)
        }
    }

    @Test func stateRoutesTellNoneLiveAndFinished() async throws {
        try await withServers(2, sources: Gate.sources, { $0.replayGrace = .zero }) { servers in
            func head(_ server: TestServer) async throws -> (Int, String?) {
                let response = try await Client.send(Client.request(.HEAD, "\(server.base)/streams/s9"))
                return (Int(response.status.code), response.headers.first(name: "Stream-State"))
            }
            func length(_ server: TestServer) async throws -> String? {
                try await Client.send(Client.request(.HEAD, "\(server.base)/streams/s9")).headers.first(name: "Stream-Length")
            }
            #expect(try await head(servers[1]) == (404, "none"))
            let gate = Gate.make()
            let creator = try await Client.create(servers[0].base, "s9", body: gate.body)
            #expect(try await head(servers[1]) == (200, "live"))
            // The length in offset units, from the producer's memory here and by asking it there.
            gate.send("héllo 🌍")
            try await eventually { try await length(servers[0]) == "8" }
            #expect(try await length(servers[1]) == "8")
            #expect(try await Client.json(.GET, "\(servers[1].base)/streams/s9/status").object["state"] as? String == "live")
            gate.finish()
            _ = try await Client.read(creator)
            await servers[0].context.waitForProducer("s9")
            #expect(try await head(servers[1]) == (200, "finished"))
        }
    }

    @Test func healthReadinessAndMetrics() async throws {
        try await withServers(1) { servers in
            let base = servers[0].base
            #expect(try await Client.json(.GET, "\(base)/healthz").status == 200)
            #expect(try await Client.json(.GET, "\(base)/readyz").object["status"] as? String == "ready")
            _ = try await Client.read(Client.create(base, "s10", body: #"{"source":"demo","parameters":{"count":3,"intervalMs":0}}"#))
            let metrics = try await Client.send(Client.request(.GET, "\(base)/metrics"))
            let text = String(buffer: try await metrics.body.collect(upTo: 1 << 20))
            #expect(text.contains("resumable_stream_producing_streams"))
            #expect(text.contains("resumable_stream_buffered_bytes"))
        }
    }
}
