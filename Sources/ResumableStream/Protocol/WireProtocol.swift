import Foundation

/// The Redis names and messages of vercel/resumable-stream's protocol, plus this project's
/// extensions, which ride in extra JSON fields that the reference ignores.
///
/// In the ``KeyLayout/reference`` layout a name is `P:rs:<kind>:<id>`, as the reference has it. In
/// the ``KeyLayout/cluster`` layout it is `P:rs:{<id>}:<kind>`: the braces make the id the name's
/// Redis Cluster hash tag, so that all of a stream's names share its slot. An id's `%` and `}` are
/// percent-escaped there (a `}` would end the tag early), which keeps the names of two ids apart.
struct WireProtocol: Sendable {
    let prefix: String
    let layout: KeyLayout

    init(prefix: String, layout: KeyLayout = .reference) {
        self.prefix = prefix
        self.layout = layout
    }

    private func name(_ kind: String, _ streamId: String) -> String {
        switch layout {
        case .reference: return "\(prefix):rs:\(kind):\(streamId)"
        case .cluster: return "\(prefix):rs:{\(Self.tag(streamId))}:\(kind)"
        }
    }

    /// The stream id as a hash tag: no `}`, never empty, one tag per id.
    static func tag(_ streamId: String) -> String {
        guard streamId.contains(where: { $0 == "}" || $0 == "%" }) else { return streamId }
        return streamId.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "}", with: "%7D")
    }

    /// `P:rs:sentinel:<id>`: absent, an integer (live), or `DONE`.
    func sentinelKey(_ streamId: String) -> String { name("sentinel", streamId) }
    /// `P:rs:request:<id>`: the producer listens here for resume requests.
    func requestChannel(_ streamId: String) -> String { name("request", streamId) }
    /// `P:rs:chunk:<listenerId>`: the producer publishes one consumer's data here. In the cluster
    /// layout the stream's tag comes first, so that the listener's channel lives on its stream's shard.
    func chunkChannel(_ listenerId: String, of streamId: String) -> String {
        switch layout {
        case .reference: return "\(prefix):rs:chunk:\(listenerId)"
        case .cluster: return "\(name("chunk", streamId)):\(listenerId)"
        }
    }

    /// The names of a durable stream (this project's extension; see ``StoredLog``).
    func storedKeys(_ streamId: String) -> StoredStreamKeys {
        StoredStreamKeys(
            log: name("log", streamId),
            writer: name("writer", streamId),
            ingest: name("ingest", streamId),
            sentinel: sentinelKey(streamId),
            appendChannel: name("append", streamId)
        )
    }

    static let doneValue = "DONE"
    /// The end of a stream, published on a consumer's chunk channel.
    static let endMessage = "\n\n\nDONE_SENTINEL_hasdfasudfyge374%$%^$EDSATRTYFtydryrte\n"
    /// The text of the error INCR returns when the sentinel holds `DONE`.
    static let notAnIntegerError = "ERR value is not an integer or out of range"

    /// How a stream ended, as a producer of this project tells listeners that asked for it (those
    /// whose request carried `"endReasons": true`). Others get the plain end message.
    enum EndReason: Equatable, Sendable {
        case completed
        case cancelled
        case failed(String)
    }

    /// The end message for a listener: the reference's end string, followed, for listeners that
    /// asked, by a JSON object saying why the stream ended when it did not simply complete.
    static func endMessage(_ reason: EndReason, extended: Bool) -> String {
        guard extended else { return endMessage }
        switch reason {
        case .completed: return endMessage
        case .cancelled: return endMessage + #"{"end":"cancelled"}"#
        case .failed(let message): return endMessage + json(EndJSON(end: "failed", reason: message))
        }
    }

    /// This project's producers start every answer to this project's listeners (those that ask for
    /// end reasons) with a mark that names the producer: one per stream, so that a follower that
    /// asks again after its producer died, once the id has been created anew, cannot take the new
    /// stream's text for the rest of the old one. NUL cannot appear in a request's JSON, and the
    /// mark goes only to listeners that asked for this project's extensions.
    static let producerMarkStart = "\u{0}rs-producer:"
    static let producerMarkEnd = "\u{0}"

    /// The text of a probe's answer when the producer no longer answers the listener it was
    /// asked about.
    static let unansweredProbeReply = "unanswered"

    /// `message`, as the first of an answer to a listener of this project.
    static func marked(_ message: String, producer producerId: String) -> String {
        producerMarkStart + producerId + producerMarkEnd + message
    }

    /// The producer's mark at the start of `message`, if any, and the message without it.
    static func producerMark(of message: String) -> (producer: String?, message: Substring) {
        guard message.hasPrefix(producerMarkStart) else { return (nil, Substring(message)) }
        let afterStart = message.dropFirst(producerMarkStart.count)
        guard let end = afterStart.firstIndex(of: "\u{0}") else { return (nil, Substring(message)) }
        return (String(afterStart[..<end]), afterStart[afterStart.index(after: end)...])
    }

    /// `nil` when `message` is data; the reason when it is an end message.
    static func endReason(of message: String) -> EndReason? {
        guard message.hasPrefix(endMessage) else { return nil }
        let suffix = message.dropFirst(endMessage.count)
        guard !suffix.isEmpty, let end = try? JSONDecoder().decode(EndJSON.self, from: Data(suffix.utf8)) else {
            return .completed
        }
        switch end.end {
        case "cancelled": return .cancelled
        case "failed": return .failed(end.reason ?? "the stream failed")
        default: return .completed
        }
    }

    /// A message on the request channel.
    enum Request: Equatable, Sendable {
        /// `{"listenerId": ..., "skipCharacters": ...}`; `endReasons` is this project's extension.
        case resume(listenerId: String, skip: Int, endReasons: Bool)
        /// `{"listenerId": ..., "skipCharacters": ..., "cancel": true}`: this project's extension. A
        /// reference producer reads it as a resume request past the end, answers an empty string on a
        /// channel nobody listens to, and goes on.
        case cancel
        /// `{"listenerId": ..., "skipCharacters": <past any end>, "probe": "<follower's listener>"}`:
        /// this project's extension. A producer of this project answers with its mark, followed by
        /// ``unansweredProbeReply`` when it no longer answers the follower's listener (a PUBLISH
        /// to it failed); a reference producer reads it as a resume request past the end and
        /// answers an empty string.
        case probe(listenerId: String, about: String)
    }

    static func encode(_ request: Request) -> String {
        switch request {
        case .resume(let listenerId, let skip, let endReasons):
            return json(RequestJSON(listenerId: listenerId, skipCharacters: skip, endReasons: endReasons ? true : nil))
        case .cancel:
            return json(RequestJSON(listenerId: "cancel-\(UUID().uuidString)", skipCharacters: Int(Int32.max), cancel: true))
        case .probe(let listenerId, let about):
            return json(RequestJSON(listenerId: listenerId, skipCharacters: Int(Int32.max), probe: about))
        }
    }

    /// Reads a request as the reference does: `skipCharacters` absent or `null` means 0, and
    /// unknown fields are ignored. `nil` for a message that is not a request.
    static func decodeRequest(_ message: String) -> Request? {
        guard let request = try? JSONDecoder().decode(RequestJSON.self, from: Data(message.utf8)) else { return nil }
        if request.cancel == true {
            return .cancel
        }
        guard let listenerId = request.listenerId, !listenerId.isEmpty else { return nil }
        if let about = request.probe {
            return .probe(listenerId: listenerId, about: about)
        }
        return .resume(listenerId: listenerId, skip: max(request.skipCharacters ?? 0, 0), endReasons: request.endReasons == true)
    }

    private struct RequestJSON: Codable {
        var listenerId: String?
        var skipCharacters: Int?
        var endReasons: Bool?
        var cancel: Bool?
        var probe: String?
    }

    private struct EndJSON: Codable {
        var end: String
        var reason: String?
    }

    private static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
