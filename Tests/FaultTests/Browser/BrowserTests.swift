import Foundation
import Testing

extension FaultTests {
    /// The demo page and the browser client (`/client.js`) in headless Chromium, through nginx
    /// (deploy/nginx.conf: round robin, no sticky sessions) in front of two instances on one
    /// redis-server. Part of the fault suite, so that it runs alone like the others.
    @Suite struct BrowserTests {
        /// The demo page: a stream started from its form, its connection cut with the page's
        /// button, and a follower opened beside it and cut too. Both resume by themselves with
        /// `Last-Event-ID` and end `completed` with the demo source's text, no gap and no
        /// duplicate; `HEAD` (the page's Stream-State) turns `finished`. The test's screenshot of
        /// the finished page is the README's (`UPDATE_DEMO_SCREENSHOT=1` writes it to docs/demo.png).
        @Test func demoPageResumesThroughNginx() async throws {
            try await FaultHarness.run { h in
                let site = try await h.startInstancesBehindNginx()
                // Long enough that the follower, opened after the creator's resume (up to a second
                // of backoff), is still live when the test cuts it on a loaded machine.
                let demo = Demo(count: 100, intervalMs: 100)
                // The form the page's own ids have, for the picture.
                let id = "demo-\(UUID().uuidString.prefix(8).lowercased())"
                let creator = "[data-pane=creator]"
                let follower = "[data-pane=follower]"

                // Tall enough for the whole page: the picture has no scroll bar.
                let shown = try await Chromium.withPage(h, width: 1280, height: 1040) { page in
                    try await page.navigate(to: "\(site.nginx.base)/")
                    try await page.waitUntil("the page's module ran", "document.documentElement.dataset.ready === 'true'")
                    _ = try await page.evaluate("""
                        document.querySelector('#stream-id').value = \(BrowserPage.literal(id));
                        document.querySelector('#count').value = '\(demo.count)';
                        document.querySelector('#interval').value = '\(demo.intervalMs)';
                        """)
                    try await page.click("#start")
                    try await page.waitUntil(
                        "the creator's pane shows 20 chunks", "\(Self.chunks(in: creator)) >= 20", diagnosis: DemoPage.script
                    )
                    try await page.click("\(creator) [data-action=cut]", diagnosis: DemoPage.script)
                    try await page.waitUntil(
                        "the creator resumed after the cut", "\(Self.field("resumes", in: creator)) >= 1 && \(Self.chunks(in: creator)) > 20",
                        diagnosis: DemoPage.script
                    )
                    try await page.click("#follow")
                    try await page.waitUntil(
                        "the follower reads", "\(Self.chunks(in: follower)) >= 1 && document.querySelector('\(follower)').dataset.state === 'open'",
                        diagnosis: DemoPage.script
                    )
                    try await page.click("\(follower) [data-action=cut]", diagnosis: DemoPage.script)
                    try await page.waitUntil(
                        "both panes show completed",
                        "['\(creator)', '\(follower)'].every((pane) => document.querySelector(`${pane} [data-field=state]`).textContent === 'completed')",
                        timeout: demo.duration + .seconds(20), diagnosis: DemoPage.script
                    )
                    // A finished stream answers live while its producer replays it to late readers
                    // (--replay-grace-seconds), then finished.
                    try await page.waitUntil(
                        "the page's Stream-State (HEAD) says finished", "document.querySelector('#server-state').textContent === 'finished'",
                        timeout: .seconds(ServerOptions().replayGraceSeconds + 10), diagnosis: DemoPage.script
                    )
                    let shown = try await page.evaluate(DemoPage.self, DemoPage.script)
                    // Each pane's text scrolled to its resume, for the picture.
                    _ = try await page.evaluate("""
                        for (const mark of document.querySelectorAll('.resume-mark')) {
                          const text = mark.parentElement;
                          text.scrollTop = mark.offsetTop - text.offsetTop - text.clientHeight / 2;
                        }
                        """)
                    try Self.save(try await page.screenshot())
                    // The page works under its own Content-Security-Policy: nothing refused.
                    let refused = page.connection.console.filter { $0.contains("Content Security Policy") }
                    h.check(refused.isEmpty, "the browser refused parts of the page: \(refused)")
                    return shown
                }

                for (name, pane) in [("the creator", shown.creator), ("the follower", shown.follower)] {
                    Self.checkWhole(h, pane.chunks, demo, "\(name)'s pane")
                    h.check(pane.state == "completed", "\(name)'s pane shows \(pane.state), not completed")
                    h.check(pane.integrity == "0 / 0", "\(name)'s pane counts gaps / duplicates: \(pane.integrity)")
                    h.check(!pane.resumes.isEmpty, "\(name)'s pane shows no resume: \(pane.log)")
                    for resume in pane.resumes {
                        // The resume's Last-Event-ID is the id of the chunk just before it.
                        h.check(resume.after == resume.at, "\(name) resumed with Last-Event-ID \(resume.at) after the chunk \(resume.after ?? "none")")
                    }
                }
                h.check(shown.serverState == "finished", "the page's Stream-State: \(shown.serverState)")

                // Through nginx, to both instances, and the resumes with their Last-Event-ID.
                let ports = Set(site.nginx.upstreamPorts(servingRequestsWith: "/streams/\(id) "))
                h.check(ports == Set(site.instances.map(\.port)), "the stream's requests reached the instances on \(ports.sorted()), not both of \(site.instances.map(\.port))")
                let resumed = site.nginx.accessLog.filter { $0.contains("\"GET /streams/\(id) ") && !$0.contains("last_event_id=\"\"") }
                h.check(resumed.count >= 2, "nginx saw \(resumed.count) GETs of the stream with a Last-Event-ID, expected the creator's and the follower's resumes at least")
            }
        }

        /// The browser client on its own: a stream created with a POST, whose connection a TCP
        /// proxy between Chromium and nginx resets twice mid-response. It resumes each time with
        /// `GET` and the `Last-Event-ID` of its last whole event, and ends `completed` with exactly
        /// the demo source's text.
        @Test func clientResumesAfterNetworkCuts() async throws {
            try await FaultHarness.run { h in
                let site = try await h.startInstancesBehindNginx()
                let proxy = try await CuttingProxy.start(h, upstreamPort: site.nginx.port, cuts: 2, cutAfterBytes: 700)
                let demo = Demo(count: 60, intervalMs: 40)
                let id = "client-\(h.keyPrefix)"

                let report = try await Chromium.withPage(h) { page in
                    try await page.navigate(to: "\(proxy.base)/")
                    return try await page.evaluate(ClientRun.self, """
                        (async () => {
                          const { createStream } = await import('/client.js');
                          const stream = createStream('/streams/\(id)', { body: \(demo.body) });
                          const opens = [], reconnects = [], chunks = [];
                          stream.addEventListener('open', (event) => opens.push(event.detail));
                          stream.addEventListener('reconnect', (event) => reconnects.push(event.detail));
                          for await (const chunk of stream) chunks.push(chunk);
                          const end = await stream.end;
                          return JSON.stringify({ chunks, end, opens, reconnects, text: stream.text, state: stream.state });
                        })()
                        """, timeout: demo.duration + .seconds(30))
                }

                h.check(report.text == demo.text, "the client's text is not the stream's: …\(report.text.suffix(80))")
                Self.checkWhole(h, report.chunks.map { DemoPage.Chunk(id: Int($0.id) ?? -1, data: $0.data) }, demo, "the client's chunks")
                h.check(report.state == "completed" && report.end == EndEvent(status: "completed", offset: demo.text.utf16.count, error: nil),
                        "the client ended \(report.state) with \(report.end)")

                // What went over the network: the POST and the first resume cut, the second resume whole.
                let streamRequests = proxy.requests.filter(\.eventStream)
                h.check(streamRequests.map(\.cut) == [true, true, false], "the proxy saw \(streamRequests), expected three event-stream requests, the first two cut")
                h.check(streamRequests.first.map { $0.method == "POST" && $0.lastEventID == nil } == true, "the first request was not the POST: \(streamRequests)")
                let resumedWith = streamRequests.dropFirst().map(\.lastEventID)
                let offsets = resumedWith.map { $0.flatMap { Int($0) } ?? -1 }
                h.check(streamRequests.dropFirst().allSatisfy { $0.method == "GET" } && offsets.count == 2 && offsets.allSatisfy { $0 > 0 } && offsets == offsets.sorted(),
                        "the resumes were not GETs with increasing Last-Event-IDs: \(streamRequests)")
                h.check(report.reconnects.map(\.lastEventId) == resumedWith.map { $0 ?? "" },
                        "the client says it resumed from \(report.reconnects.map(\.lastEventId)), the proxy saw \(resumedWith)")
                h.check(report.reconnects.allSatisfy { $0.reason.contains("broke") },
                        "the client took the resets for something else: \(report.reconnects.map(\.reason))")
                h.check(Set(offsets).isSubset(of: Set(report.chunks.compactMap { Int($0.id) })),
                        "a resume's Last-Event-ID (\(offsets)) is not the id of a chunk the client had")
                h.check(report.opens.map(\.method) == ["POST", "GET", "GET"], "the client's connections: \(report.opens)")
            }
        }

        /// The client's reading of the event-stream format, in the browser, on text cut at every
        /// place (a piece may end inside a field or between the CR and LF of a line's end): LF, CR
        /// and CRLF line ends, `data:` lines joined, an event's name, `id:` alone, `retry:`,
        /// comments, a field without a colon, unknown fields, and a last event cut short, which is
        /// never reported.
        @Test func clientParsesEventStreams() async throws {
            try await FaultHarness.run { h in
                _ = try Chromium.executable()
                let server = try await h.startServer("A", redis: nil)
                let parsed = try await Chromium.withPage(h) { page in
                    try await page.navigate(to: "\(server.base)/")
                    return try await page.evaluate(ParsedStream.self, """
                        (async () => {
                          const { EventStreamParser } = await import('/client.js');
                          const text = ': comment\\nretry: 2500\\nid: 7\\r\\ndata: first line\\r\\ndata:second line\\r\\n\\r\\n'
                            + 'event: end\\rdata: {"status":"completed"}\\r\\r'
                            + 'data\\n\\nid: 9\\n\\ndata:  two spaces\\nunknown: x\\n\\ndata: cut short';
                          const parse = (pieces) => {
                            const seen = { events: [], retries: [], comments: [] };
                            const parser = new EventStreamParser({
                              onEvent: (event) => seen.events.push(event),
                              onRetry: (retry) => seen.retries.push(retry),
                              onComment: (comment) => seen.comments.push(comment),
                            });
                            for (const piece of pieces) parser.push(piece);
                            return JSON.stringify(seen);
                          };
                          const whole = parse([text]);
                          const differing = [];
                          for (let cut = 0; cut <= text.length; cut += 1) {
                            if (parse([text.slice(0, cut), text.slice(cut)]) !== whole) differing.push(cut);
                          }
                          if (parse([...text]) !== whole) differing.push('one character at a time');
                          return JSON.stringify({ ...JSON.parse(whole), differing });
                        })()
                        """)
                }
                h.check(parsed.events == [
                    ParsedStream.Event(id: "7", event: "message", data: "first line\nsecond line"),
                    ParsedStream.Event(id: nil, event: "end", data: #"{"status":"completed"}"#),
                    ParsedStream.Event(id: nil, event: "message", data: ""),
                    ParsedStream.Event(id: "9", event: "message", data: nil),
                    ParsedStream.Event(id: nil, event: "message", data: " two spaces"),
                ], "the parser read \(parsed.events)")
                h.check(parsed.retries == [2500] && parsed.comments == ["comment"], "retries \(parsed.retries), comments \(parsed.comments)")
                h.check(parsed.differing.isEmpty, "the text cut at \(parsed.differing) parses otherwise than whole")
            }
        }

        /// The whole text of `demo` in `chunks`, in order, each id the one before plus its length.
        static func checkWhole(_ h: FaultHarness, _ chunks: [DemoPage.Chunk], _ demo: Demo, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let text = chunks.map(\.data).joined()
            if text != demo.text {
                let common = zip(text, demo.text).prefix { $0 == $1 }.count
                h.fail("\(what): the text differs from the demo source's after \(common) characters: …\(text.dropFirst(max(common - 20, 0)).prefix(60))", sourceLocation: sourceLocation)
            }
            var offset = 0
            for chunk in chunks {
                guard chunk.id == offset + chunk.data.utf16.count else {
                    h.fail("\(what): the chunk \(chunk.data.debugDescription) has id \(chunk.id) after \(offset): a gap or a duplicate", sourceLocation: sourceLocation)
                    return
                }
                offset = chunk.id
            }
            h.check(offset == demo.text.utf16.count, "\(what): the last id is \(offset), not \(demo.text.utf16.count)", sourceLocation: sourceLocation)
        }

        static func chunks(in pane: String) -> String {
            "document.querySelectorAll('\(pane) [data-field=text] span[data-id]').length"
        }

        static func field(_ name: String, in pane: String) -> String {
            "Number(document.querySelector('\(pane) [data-field=\(name)]').textContent)"
        }

        /// To docs/demo.png with UPDATE_DEMO_SCREENSHOT=1, which is how the README's picture is
        /// made; else to the temporary folder, to look at.
        static func save(_ png: Data) throws {
            let update = ProcessInfo.processInfo.environment["UPDATE_DEMO_SCREENSHOT"] == "1"
            let file = update
                ? Programs.repository.appendingPathComponent("docs/demo.png")
                : FileManager.default.temporaryDirectory.appendingPathComponent("resumable-stream-demo.png")
            try png.write(to: file)
            print("the demo page's screenshot: \(file.path)")
        }
    }
}

extension FaultHarness {
    /// A redis-server, two instances on it, and nginx in front of both. Chromium is looked for
    /// first, so that a machine without it fails at once with what to do.
    func startInstancesBehindNginx() async throws -> (nginx: NginxProcess, instances: [ServerProcess]) {
        _ = try Chromium.executable()
        _ = try NginxProcess.executable()
        let redis = try await startRedis()
        let instances = [try await startServer("A", redis: redis), try await startServer("B", redis: redis)]
        return (try await NginxProcess.start(self, upstreams: instances), instances)
    }
}

/// What the demo page shows: each pane's chunks (one span each, with its id), its resume marks,
/// its state, its count of gaps and duplicates and its log; and the Stream-State of HEAD.
struct DemoPage: Decodable {
    struct Chunk: Decodable {
        let id: Int
        let data: String
    }

    struct Resume: Decodable {
        /// The Last-Event-ID the resume sent.
        let at: String
        /// The id of the chunk just before its mark.
        let after: String?
    }

    struct Pane: Decodable {
        let state: String
        let integrity: String
        let chunks: [Chunk]
        let resumes: [Resume]
        let log: [String]
    }

    let creator: Pane
    let follower: Pane
    let serverState: String

    static let script = """
        JSON.stringify((() => {
          const pane = (name) => {
            const root = document.querySelector(`[data-pane=${name}]`);
            const field = (field) => root.querySelector(`[data-field=${field}]`);
            return {
              state: field('state').textContent,
              integrity: field('integrity').textContent,
              chunks: [...field('text').querySelectorAll('span[data-id]')].map((span) => ({ id: Number(span.dataset.id), data: span.textContent })),
              resumes: [...field('text').querySelectorAll('.resume-mark')].map((mark) => ({ at: mark.dataset.resumedAt, after: mark.previousElementSibling?.dataset.id ?? null })),
              log: [...field('log').querySelectorAll('li')].map((item) => item.textContent),
            };
          };
          return { creator: pane('creator'), follower: pane('follower'), serverState: document.querySelector('#server-state').textContent };
        })())
        """
}

/// What the client's parser made of a text.
struct ParsedStream: Decodable {
    struct Event: Decodable, Equatable, CustomStringConvertible {
        let id: String?
        let event: String
        let data: String?
        var description: String { "{id: \(id ?? "-"), event: \(event), data: \(data.map { $0.debugDescription } ?? "-")}" }
    }

    /// Where a cut made the events, retries or comments differ, or "one character at a time".
    enum Cut: Decodable, CustomStringConvertible {
        case at(Int)
        case other(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let offset = try? container.decode(Int.self) { self = .at(offset) } else { self = .other(try container.decode(String.self)) }
        }

        var description: String {
            switch self {
            case .at(let offset): "\(offset)"
            case .other(let text): text
            }
        }
    }

    let events: [Event]
    let retries: [Int]
    let comments: [String]
    let differing: [Cut]
}

/// What the client reported of one stream read in the page.
struct ClientRun: Decodable {
    struct Chunk: Decodable {
        let id: String
        let data: String
    }

    struct Open: Decodable, CustomStringConvertible {
        let method: String
        let status: Int
        let lastEventId: String
        var description: String { "\(method) \(status)\(lastEventId.isEmpty ? "" : " from \(lastEventId)")" }
    }

    struct Reconnect: Decodable {
        let attempt: Int
        let lastEventId: String
        let reason: String
    }

    let chunks: [Chunk]
    let end: EndEvent
    let opens: [Open]
    let reconnects: [Reconnect]
    let text: String
    let state: String
}
