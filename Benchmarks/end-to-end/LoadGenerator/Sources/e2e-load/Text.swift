/// The text every stream of the benchmark carries: the demo source's tokens with a `tokenSize`.
/// Token `n` (from 1) is `size - 1` times the letter `"a" + n % 26`, then a space, so the byte at
/// any offset is known without keeping the text.
struct TokenText {
    let size: Int
    let count: Int
    /// The first token's index (1 for a whole stream).
    var first = 1

    var total: Int { size * count }

    @inline(__always)
    func byte(at offset: Int) -> UInt8 {
        let (index, position) = offset.quotientAndRemainder(dividingBy: size)
        return position == size - 1 ? 0x20 : 0x61 &+ UInt8((index + first) % 26)
    }

    func token(_ index: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0x61 &+ UInt8(index % 26), count: size)
        bytes[size - 1] = 0x20
        return bytes
    }
}

/// Checks a `text/event-stream` body byte by byte against the expected text, as it arrives.
///
/// Events without a name carry text: their data lines (joined with LF, as a client joins them) must
/// continue the expected text exactly. With `checkIds`, each event's `id:` must be the offset just
/// after it (this service's framing). An `end` event must say `completed` at the text's length.
/// Comments (`: hi`, `: heartbeat`) and `retry:` are allowed anywhere.
struct SSEChecker {
    let text: TokenText
    let checkIds: Bool
    let expectEnd: Bool
    /// Offset of text checked so far, and of text in events that have ended (what a client has).
    private(set) var checked = 0
    private(set) var offset = 0
    private(set) var events = 0
    private(set) var sawEnd = false
    private(set) var error: String?

    private var line: [UInt8] = []
    private var eventName: [UInt8]?
    private var eventId: [UInt8]?
    private var dataLines = 0
    private var endData: [UInt8] = []
    /// Offsets before the first one of the stream (a resume from `resumeAt`).
    let base: Int

    init(text: TokenText, checkIds: Bool, expectEnd: Bool, base: Int = 0) {
        self.text = text
        self.checkIds = checkIds
        self.expectEnd = expectEnd
        self.base = base
    }

    var complete: Bool { error == nil && offset == text.total && (!expectEnd || sawEnd) }

    mutating func fail(_ message: String) {
        if error == nil { error = message }
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard error == nil, bytes.count > 0 else { return }
        var start = 0
        while start < bytes.count, error == nil {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
            guard let newline = rest.firstIndex(of: 0x0A) else {
                line.append(contentsOf: rest)
                return
            }
            let piece = UnsafeRawBufferPointer(rebasing: rest[..<newline])
            if line.isEmpty {
                processLine(piece)
            } else {
                line.append(contentsOf: piece)
                let whole = line
                line.removeAll(keepingCapacity: true)
                whole.withUnsafeBytes { processLine($0) }
            }
            start += newline + 1
        }
    }

    private mutating func processLine(_ raw: UnsafeRawBufferPointer) {
        var l = raw
        if let last = l.last, last == 0x0D { l = UnsafeRawBufferPointer(rebasing: l.dropLast()) }
        if l.isEmpty { dispatch(); return }
        if l[0] == 0x3A { return }  // a comment
        let colon = l.firstIndex(of: 0x3A) ?? l.count
        let field = UnsafeRawBufferPointer(rebasing: l[..<colon])
        var valueStart = colon + 1
        if valueStart < l.count, l[valueStart] == 0x20 { valueStart += 1 }
        let value = valueStart <= l.count ? UnsafeRawBufferPointer(rebasing: l[valueStart...]) : UnsafeRawBufferPointer(rebasing: l[l.count...])
        if field.elementsEqual("data".utf8) {
            if let name = eventName, !name.isEmpty, !name.elementsEqual("message".utf8) {
                if endData.count < 4096 { endData.append(contentsOf: value) }
                return
            }
            if dataLines > 0 { check(CollectionOfOne(0x0A)) }
            check(value)
            dataLines += 1
        } else if field.elementsEqual("id".utf8) {
            eventId = Array(value)
        } else if field.elementsEqual("event".utf8) {
            eventName = Array(value)
            if dataLines > 0, !value.elementsEqual("message".utf8) {
                fail("event name after data at offset \(base + checked)")
            }
        } else if field.elementsEqual("retry".utf8) {
            return
        } else {
            fail("unknown field '\(String(decoding: field, as: UTF8.self))'")
        }
    }

    private mutating func check<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        for byte in bytes {
            guard checked < text.total else {
                fail("text beyond the expected \(text.total) bytes")
                return
            }
            let want = text.byte(at: checked)
            guard byte == want else {
                fail("wrong byte at offset \(base + checked): got \(byte), want \(want)")
                return
            }
            checked += 1
        }
    }

    private mutating func dispatch() {
        defer {
            eventName = nil
            eventId = nil
            dataLines = 0
            endData.removeAll()
        }
        if let name = eventName, name.elementsEqual("end".utf8) {
            let body = String(decoding: endData, as: UTF8.self)
            if sawEnd { fail("a second end event"); return }
            sawEnd = true
            guard expectEnd else { fail("an end event: \(body)"); return }
            guard body.contains("\"status\":\"completed\""), body.contains("\"offset\":\(base + offset)") else {
                fail("end event \(body) at offset \(base + offset)")
                return
            }
            if offset != text.total { fail("end at \(base + offset) before \(base + text.total)") }
            return
        }
        if let name = eventName, !name.isEmpty, !name.elementsEqual("message".utf8) {
            fail("an event named '\(String(decoding: name, as: UTF8.self))'")
            return
        }
        guard dataLines > 0 else { return }
        if sawEnd { fail("text after the end event"); return }
        offset = checked
        events += 1
        if checkIds {
            let want = String(base + offset)
            guard let id = eventId, id.elementsEqual(want.utf8) else {
                fail("event id \(eventId.map { String(decoding: $0, as: UTF8.self) } ?? "none") at offset \(want)")
                return
            }
        }
    }
}

/// This service's framing of a whole stream, for the static files of the limit.
func sseFile(_ text: TokenText) -> [UInt8] {
    var out = Array("retry: 1000\n\n".utf8)
    var offset = 0
    for index in text.first..<(text.first + text.count) {
        offset += text.size
        out += Array("id: \(offset)\ndata: ".utf8)
        out += text.token(index)
        out += Array("\n\n".utf8)
    }
    out += Array("event: end\ndata: {\"offset\":\(offset),\"status\":\"completed\"}\n\n".utf8)
    return out
}
