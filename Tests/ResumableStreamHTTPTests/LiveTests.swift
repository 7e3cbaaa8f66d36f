import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import ResumableStream
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The service under the loads the issue names: a slow upstream, a client that stops reading,
/// a thousand followers, and a shutdown in the middle of streams.
@Suite(.timeLimit(.minutes(3)))
struct LiveTests {
    @Test func theProxyPassesEachUpstreamPieceOnWhileTheUpstreamStillSends() async throws {
        try await withUpstream { upstream in
            try await withServers(2, { $0.proxyAllowedOrigins = [upstream.origin] }) { servers in
                let gate = UpstreamGates.make()
                let body = #"{"source":"proxy","parameters":{"url":"\#(upstream.origin)/gated/\#(gate.name)"}}"#
                gate.send("piece 1\n")
                let creator = try await Client.create(servers[0].base, "p1", body: body)
                #expect(creator.status == .ok)
                let follower = try await Client.follow(servers[1].base, "p1")
                var events = EventStream(body: follower.body).makeAsyncIterator()
                // Each piece reaches the follower on the other instance before the upstream sends
                // the next one.
                #expect(try await events.next()?.data == "piece 1\n")
                for index in 2...5 {
                    gate.send("piece \(index)\n")
                    #expect(try await events.next()?.data == "piece \(index)\n")
                }
                gate.finish()
                #expect(try await events.next()?.name == "end")
                #expect(try await Client.read(creator).text == (1...5).map { "piece \($0)\n" }.joined())
            }
        }
    }

    @Test func aClientThatStopsReadingCostsNoMemoryAndSlowsNobody() async throws {
        let tokens = 3072, tokenSize = 8192  // 24 MiB
        let streamBytes = tokens * tokenSize
        try await withServers(1, redis: false, { $0.streamBufferLimit = 64 << 20 }) { servers in
            let server = servers[0]
            let body = #"{"source":"demo","parameters":{"count":\#(tokens),"intervalMs":0,"tokenSize":\#(tokenSize)}}"#
            let creator = try await Client.create(server.base, "big", body: body)
            // A client that sends its request and then reads nothing, with a small receive buffer.
            let stalled = try await StalledClient.connect(port: server.port, path: "/streams/big")
            try await eventually { server.routes.activeReaders == 2 }
            // Two readers that read at full speed get everything while the stalled one waits.
            async let first = countBytes(creator)
            async let second = countBytes(try await Client.follow(server.base, "big"))
            let (creatorBytes, followerBytes) = try await (first, second)
            #expect(creatorBytes.text == streamBytes)
            #expect(followerBytes.text == streamBytes)
            #expect(server.routes.activeReaders == 1)

            // What went to the stalled client is what its socket took: the rest of the stream is
            // in the stream's buffer once, not queued for the client.
            let stalledSent = server.routes.sentBytes - creatorBytes.wire - followerBytes.wire
            #expect(stalledSent < 8 << 20, "the stalled reader was handed \(stalledSent) bytes")
            #expect(server.context.bufferedBytes <= streamBytes)

            try await stalled.close()
            try await eventually { server.routes.activeReaders == 0 }
        }
    }

    @Test func aThousandFollowersOfOneStream() async throws {
        raiseOpenFileLimit()
        let followers = 1000
        try await withServers(1, sources: Gate.sources) { servers in
            let server = servers[0]
            let gate = Gate.make()
            let creator = try await Client.create(server.base, "crowd", body: gate.body)
            let reads = try await withThrowingTaskGroup(of: ReadStream.self) { group in
                for _ in 0..<followers {
                    group.addTask { try await Client.read(Client.follow(server.base, "crowd")) }
                }
                // Every follower is connected and waiting before the source says anything.
                try await eventually(timeout: .seconds(60)) { server.routes.activeReaders == followers + 1 }
                for index in 1...20 {
                    gate.send("chunk \(index) ")
                }
                gate.finish()
                var reads: [ReadStream] = []
                for try await read in group { reads.append(read) }
                return reads
            }
            let text = (1...20).map { "chunk \($0) " }.joined()
            #expect(reads.count == followers)
            #expect(reads.allSatisfy { $0.text == text && $0.end?.status == "completed" })
            #expect(try await Client.read(creator).text == text)
            try await eventually { server.routes.activeReaders == 0 }
        }
    }

    @Test func shutdownRefusesNewStreamsLetsProducersFinishAndSendsFollowersElsewhere() async throws {
        // A drain timeout that the test never reaches: the local producer ends because its source
        // does, so nothing here races a clock.
        try await withServers(2, sources: Gate.sources, { $0.drainTimeout = .seconds(120) }) { servers in
            let (draining, staying) = (servers[0], servers[1])
            // Produced on the instance that shuts down: it may finish during the drain.
            let local = Gate.make()
            let localCreator = try await Client.create(draining.base, "d1", body: local.body)
            local.send("before ")
            // Produced on the other instance, followed on the one that shuts down.
            let remote = Gate.make()
            let remoteCreator = try await Client.create(staying.base, "d2", body: remote.body)
            let remoteCreatorRead = Task { try await Client.read(remoteCreator) }
            remote.send("one ")
            let follower = try await Client.follow(draining.base, "d2")
            var events = EventStream(body: follower.body).makeAsyncIterator()
            #expect(try await events.next()?.data == "one ")

            let stopping = Task { await draining.stop() }
            try await eventually { draining.context.isShuttingDown }
            var (status, object) = try await Client.json(.POST, "\(draining.base)/streams/d3", body: BadInputTests.demo)
            #expect(status == 503)
            #expect(object["error"] as? String == "shutting_down")
            (status, object) = try await Client.json(.GET, "\(draining.base)/readyz")
            #expect(status == 503)
            (status, object) = try await Client.json(.GET, "\(draining.base)/streams/d2")
            #expect(status == 503)

            // The local stream goes on during the drain and ends as its source does.
            local.send("after")
            local.finish()
            let localRead = try await Client.read(localCreator)
            #expect(localRead.text == "before after")
            #expect(localRead.end?.status == "completed")
            // Then the follower's response ends without an end event; it resumes on the other
            // instance.
            #expect(try await events.next() == nil)
            await stopping.value
            remote.send("two")
            remote.finish()
            let resumed = try await Client.read(Client.follow(staying.base, "d2", lastEventId: 4))
            #expect(resumed.text == "two")
            #expect(resumed.end?.status == "completed")
            #expect(try await remoteCreatorRead.value.text == "one two")
        }
    }

    @Test func producersStillRunningAtTheDrainDeadlineAreCancelled() async throws {
        try await withServers(1, sources: Gate.sources, { $0.drainTimeout = .milliseconds(200) }) { servers in
            let server = servers[0]
            // A source that never ends by itself.
            let gate = Gate.make()
            let creator = try await Client.create(server.base, "endless", body: gate.body)
            gate.send("before ")
            let stopping = Task { await server.stop() }
            let read = try await Client.read(creator)
            #expect(read.text == "before ")
            #expect(read.end?.status == "cancelled")
            await stopping.value
            #expect(server.context.activeStreams.producing == 0)
        }
    }
}

/// Reads a response to its end, counting the chunks' text (in bytes) and the bytes on the wire.
private func countBytes(_ response: HTTPClientResponse) async throws -> (text: Int, wire: Int) {
    var text = 0
    var wire = 0
    var pending: [UInt8] = []
    for try await piece in response.body {
        wire += piece.readableBytes
        pending.append(contentsOf: piece.readableBytesView)
        // Count the data of whole events; each event of this test is one data line.
        while let end = pending.indices.dropLast().first(where: { pending[$0] == 0x0A && pending[$0 + 1] == 0x0A }) {
            let event = EventStreamParser.parse(String(decoding: pending[...(end + 1)], as: UTF8.self))
            if let event = event.first, event.name == nil { text += event.data.utf8.count }
            pending.removeSubrange(...(end + 1))
        }
    }
    return (text, wire)
}

/// A thousand followers and their server in one process need more than the usual 1,024 files.
private func raiseOpenFileLimit() {
    #if canImport(Glibc)
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    #endif
}

/// A client that sends a request and then never reads: NIO's automatic reading is off and the
/// receive buffer is small, so the server's writes back up.
private struct StalledClient {
    let channel: any Channel

    static func connect(port: Int, path: String) async throws -> StalledClient {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.so_rcvbuf), value: 16 * 1024)
            .connect(host: "127.0.0.1", port: port)
            .get()
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: request)).get()
        return StalledClient(channel: channel)
    }

    func close() async throws {
        try await channel.close().get()
    }
}
