import NIOCore
import ResumableStreamHTTP
import Testing

@Suite("Server-Sent Events")
struct ServerSentEventsTests {
    @Test func aChunkIsOneEventWithItsOffsetAsId() {
        var buffer = ByteBuffer()
        ServerSentEvents.writeEvent(data: "hello", id: "5", into: &buffer)
        #expect(String(buffer: buffer) == "id: 5\ndata: hello\n\n")
    }

    @Test func aNamedEvent() {
        var buffer = ByteBuffer()
        ServerSentEvents.writeEvent(data: #"{"reason":"cancelled"}"#, name: "cancelled", into: &buffer)
        #expect(String(buffer: buffer) == "event: cancelled\ndata: {\"reason\":\"cancelled\"}\n\n")
    }

    @Test func lineBreaksBecomeDataLines() {
        var buffer = ByteBuffer()
        ServerSentEvents.writeEvent(data: "one\ntwo\n", id: "8", into: &buffer)
        #expect(String(buffer: buffer) == "id: 8\ndata: one\ndata: two\ndata: \n\n")
    }

    /// What a browser's EventSource gets back is the chunk, for every chunk without CR.
    @Test(arguments: ["", "a", "\n", "\n\n", "a\nb", "a\n", "\na", " leading space", "data: looks like a field", "é🌍中\nx", ":colon first"])
    func aClientThatJoinsTheDataLinesGetsTheChunkBack(chunk: String) {
        var buffer = ByteBuffer()
        ServerSentEvents.writeEvent(data: chunk, id: "1", into: &buffer)
        let events = EventStreamParser.parse(String(buffer: buffer))
        #expect(events == [.init(id: "1", name: nil, data: chunk)])
    }

    @Test func carriageReturnsComeBackAsLineFeeds() {
        var buffer = ByteBuffer()
        ServerSentEvents.writeEvent(data: "a\r\nb\rc", into: &buffer)
        #expect(EventStreamParser.parse(String(buffer: buffer)).map(\.data) == ["a\nb\nc"])
    }

    @Test func commentsAndRetryAreNotEvents() {
        var buffer = ByteBuffer()
        ServerSentEvents.writeRetry(milliseconds: 1_000, into: &buffer)
        ServerSentEvents.writeComment("heartbeat\nwith a break", into: &buffer)
        ServerSentEvents.writeEvent(data: "x", id: "1", into: &buffer)
        #expect(String(buffer: buffer).hasPrefix("retry: 1000\n\n: heartbeatwith a break\n\n"))
        #expect(EventStreamParser.parse(String(buffer: buffer)) == [.init(id: "1", name: nil, data: "x")])
    }

    @Test func manyEventsInOneStream() {
        var buffer = ByteBuffer()
        let chunks = ["Hello, ", "wörld\n", "🌍"]
        var offset = 0
        for chunk in chunks {
            offset += chunk.utf16.count
            ServerSentEvents.writeEvent(data: chunk, id: String(offset), into: &buffer)
        }
        let events = EventStreamParser.parse(String(buffer: buffer))
        #expect(events.map(\.data) == chunks)
        #expect(events.map(\.id) == ["7", "13", "15"])
    }
}

/// The HTML standard's event stream interpretation, as a browser's EventSource runs it.
enum EventStreamParser {
    struct Event: Equatable {
        var id: String?
        var name: String?
        var data: String
    }

    static func parse(_ stream: String) -> [Event] {
        var events: [Event] = []
        var data = ""
        var hasData = false
        var id: String?
        var name: String?
        // Lines end at CRLF, LF or CR.
        var lines: [Substring] = []
        var start = stream.unicodeScalars.startIndex
        var index = start
        let scalars = stream.unicodeScalars
        while index < scalars.endIndex {
            if scalars[index] == "\r" || scalars[index] == "\n" {
                lines.append(Substring(scalars[start..<index]))
                if scalars[index] == "\r", scalars.index(after: index) < scalars.endIndex, scalars[scalars.index(after: index)] == "\n" {
                    index = scalars.index(after: index)
                }
                index = scalars.index(after: index)
                start = index
            } else {
                index = scalars.index(after: index)
            }
        }
        for line in lines {
            if line.isEmpty {
                if hasData {
                    if data.hasSuffix("\n") { data.removeLast() }
                    events.append(Event(id: id, name: name, data: data))
                }
                data = ""
                hasData = false
                name = nil
                continue
            }
            if line.hasPrefix(":") { continue }
            let field: Substring
            var value: Substring
            if let colon = line.firstIndex(of: ":") {
                field = line[..<colon]
                value = line[line.index(after: colon)...]
                if value.hasPrefix(" ") { value = value.dropFirst() }
            } else {
                field = line
                value = ""
            }
            switch field {
            case "data":
                data += value + "\n"
                hasData = true
            case "id": id = String(value)
            case "event": name = String(value)
            default: continue
            }
        }
        return events
    }
}
