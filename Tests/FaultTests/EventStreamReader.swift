import AsyncHTTPClient
import Foundation
import NIOCore

/// The `end` event of a stream: `{"status":"completed","offset":N}`, or `failed` with an `error`.
struct EndEvent: Decodable, Sendable, Equatable, CustomStringConvertible {
    let status: String
    let offset: Int?
    let error: String?

    var description: String { "end \(status)\(error.map { " (\($0))" } ?? "")\(offset.map { " at \($0)" } ?? "")" }
}

/// What a client has read of an event stream so far.
struct StreamRead: Sendable, CustomStringConvertible {
    var text = ""
    /// Each chunk's `id:`, the offset just after it.
    var ids: [Int] = []
    var end: EndEvent?
    /// The response ended (with or without an end event), or broke off: `failure` says how.
    var finished = false
    var failure: String?

    var chunks: Int { ids.count }
    var lastId: Int { ids.last ?? 0 }

    var description: String {
        var parts = ["\(chunks) chunks to offset \(lastId)", end.map(\.description) ?? "no end event"]
        if let failure { parts.append("broke off: \(failure)") }
        if !finished { parts.append("still open") }
        return parts.joined(separator: ", ")
    }
}

enum EventStreamReader {
    /// Reads `response`'s events into `read` until its end, a failure, or `timeout` (then the
    /// response is dropped, which closes its connection).
    static func read(_ response: HTTPClientResponse, into read: Observed<StreamRead>, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await readEvents(response, into: read) }
            group.addTask {
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                read.update { read in
                    if !read.finished { read.failure = read.failure ?? "still open after \(timeout)" }
                }
            }
            _ = await group.next()
            group.cancelAll()
        }
        read.update { $0.finished = true }
    }

    private static func readEvents(_ response: HTTPClientResponse, into read: Observed<StreamRead>) async {
        var pending: [UInt8] = []
        do {
            for try await piece in response.body {
                pending.append(contentsOf: piece.readableBytesView)
                // An event ends with a blank line; the server ends lines with LF.
                while let end = blankLine(in: pending) {
                    let block = String(decoding: pending[..<end], as: UTF8.self)
                    pending.removeSubrange(..<(end + 2))
                    if case .stop = handle(block, into: read) { return }
                }
            }
            read.update { $0.finished = true }
        } catch {
            read.update { read in
                read.failure = read.failure ?? String(describing: error)
                read.finished = true
            }
        }
    }

    private static func blankLine(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        return (0..<(bytes.count - 1)).first { bytes[$0] == 0x0A && bytes[$0 + 1] == 0x0A }
    }

    private enum Next { case more, stop }

    private static func handle(_ block: String, into read: Observed<StreamRead>) -> Next {
        var id: String?
        var name: String?
        var data: [Substring] = []
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(":") { continue }  // a heartbeat
            let field = line.prefix { $0 != ":" }
            var value = line.dropFirst(field.count).dropFirst()
            if value.hasPrefix(" ") { value = value.dropFirst() }
            switch field {
            case "id": id = String(value)
            case "event": name = String(value)
            case "data": data.append(value)
            default: continue
            }
        }
        guard !data.isEmpty else { return .more }
        let payload = data.joined(separator: "\n")
        if name == "end" {
            let end = try? JSONDecoder().decode(EndEvent.self, from: Data(payload.utf8))
            read.update { read in
                read.end = end ?? EndEvent(status: "undecodable: \(payload)", offset: nil, error: nil)
                read.finished = true
            }
            return .stop
        }
        read.update { read in
            read.text += payload
            if let id = id.flatMap(Int.init) { read.ids.append(id) }
        }
        return .more
    }
}

/// A `demo` stream's parameters, its request body and the text it produces: token `n` is
/// `"token n "`, as the demo source writes it.
struct Demo {
    let count: Int
    let intervalMs: Int

    var body: String { #"{"source":"demo","parameters":{"count":\#(count),"intervalMs":\#(intervalMs)}}"# }
    var text: String { (1...max(count, 1)).prefix(count).map { "token \($0) " }.joined() }
    /// How long it runs, about.
    var duration: Duration { .milliseconds(count * intervalMs) }
}
