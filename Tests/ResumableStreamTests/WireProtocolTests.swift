import Foundation
import Redis
@testable import ResumableStream
import Testing

struct WireProtocolTests {
    // MARK: names

    @Test func namesLiveUnderThePrefix() {
        let wire = WireProtocol(prefix: "p")
        #expect(wire.sentinelKey("id") == "p:rs:sentinel:id")
        #expect(wire.requestChannel("id") == "p:rs:request:id")
        #expect(wire.chunkChannel("lid", of: "id") == "p:rs:chunk:lid")
    }

    @Test func clusterNamesShareTheStreamsHashSlot() {
        let wire = WireProtocol(prefix: "p", layout: .cluster)
        #expect(wire.sentinelKey("id") == "p:rs:{id}:sentinel")
        #expect(wire.requestChannel("id") == "p:rs:{id}:request")
        #expect(wire.chunkChannel("lid", of: "id") == "p:rs:{id}:chunk:lid")
        for id in ["id", "a}b", "}", "{x}", "%7D", "50%", "ünï", String(repeating: "z", count: 256)] {
            let keys = wire.storedKeys(id)
            let names = [keys.log, keys.writer, keys.ingest, keys.sentinel, keys.appendChannel, wire.requestChannel(id), wire.chunkChannel("l", of: id)]
            let slots = Set(names.map(HashSlot.of))
            #expect(slots.count == 1, "\(id): \(names)")
            // The tag is the id's own (escaped), so that ids spread over the slots.
            #expect(slots.first == HashSlot.of(WireProtocol.tag(id)))
        }
        // Escaping keeps ids apart: `}` and its escape are different streams.
        #expect(wire.sentinelKey("}") != wire.sentinelKey("%7D"))
    }

    @Test func endMessageIsTheReferenceString() {
        #expect(WireProtocol.endMessage == "\n\n\nDONE_SENTINEL_hasdfasudfyge374%$%^$EDSATRTYFtydryrte\n")
    }

    // MARK: decoding requests

    @Test func decodesAResumeRequest() {
        let request = WireProtocol.decodeRequest(#"{"listenerId":"a","skipCharacters":5}"#)
        #expect(request == .resume(listenerId: "a", skip: 5, endReasons: false))
    }

    @Test func absentSkipCharactersMeansZero() {
        // The TypeScript reference omits the field.
        let request = WireProtocol.decodeRequest(#"{"listenerId":"a"}"#)
        #expect(request == .resume(listenerId: "a", skip: 0, endReasons: false))
    }

    @Test func nullSkipCharactersMeansZero() {
        // The Python port sends null.
        let request = WireProtocol.decodeRequest(#"{"listenerId":"a","skipCharacters":null}"#)
        #expect(request == .resume(listenerId: "a", skip: 0, endReasons: false))
    }

    @Test func unknownFieldsAreIgnored() {
        let request = WireProtocol.decodeRequest(#"{"listenerId":"a","skipCharacters":2,"future":{"x":[1,2]},"y":"z"}"#)
        #expect(request == .resume(listenerId: "a", skip: 2, endReasons: false))
    }

    @Test func negativeSkipIsZero() {
        let request = WireProtocol.decodeRequest(#"{"listenerId":"a","skipCharacters":-3}"#)
        #expect(request == .resume(listenerId: "a", skip: 0, endReasons: false))
    }

    @Test func decodesTheEndReasonsExtension() {
        let request = WireProtocol.decodeRequest(#"{"listenerId":"a","skipCharacters":1,"endReasons":true}"#)
        #expect(request == .resume(listenerId: "a", skip: 1, endReasons: true))
    }

    @Test(arguments: [
        "not json",
        "",
        "[]",
        "42",
        #"{"skipCharacters":5}"#,
        #"{"listenerId":"","skipCharacters":5}"#,
        #"{"listenerId":null}"#,
    ])
    func rejectsWhatIsNotAResumeRequest(message: String) {
        #expect(WireProtocol.decodeRequest(message) == nil)
    }

    // MARK: encoding requests

    @Test func cancelRequestRoundTrips() {
        let message = WireProtocol.encode(.cancel)
        #expect(WireProtocol.decodeRequest(message) == .cancel)
    }

    @Test func cancelRequestReadsAsAResumePastTheEndToAReference() throws {
        let object = try jsonObject(WireProtocol.encode(.cancel))
        let listenerId = try #require(object["listenerId"] as? String)
        #expect(!listenerId.isEmpty)
        #expect((object["skipCharacters"] as? Int ?? 0) > 0)
    }

    @Test func resumeRequestRoundTrips() {
        let request = WireProtocol.Request.resume(listenerId: "l-1", skip: 42, endReasons: true)
        #expect(WireProtocol.decodeRequest(WireProtocol.encode(request)) == request)
    }

    @Test func resumeRequestHasTheReferenceKeys() throws {
        let object = try jsonObject(WireProtocol.encode(.resume(listenerId: "l-1", skip: 7, endReasons: false)))
        #expect(object["listenerId"] as? String == "l-1")
        #expect(object["skipCharacters"] as? Int == 7)
        #expect(object["endReasons"] == nil)
        #expect(object["cancel"] == nil)
    }

    @Test func resumeRequestCarriesEndReasonsOnlyWhenAsked() throws {
        let object = try jsonObject(WireProtocol.encode(.resume(listenerId: "l-1", skip: 0, endReasons: true)))
        #expect(object["endReasons"] as? Bool == true)
        #expect(object["skipCharacters"] as? Int == 0)
    }

    // MARK: end messages

    @Test(arguments: [
        WireProtocol.EndReason.completed,
        .cancelled,
        .failed("boom"),
    ])
    func plainEndMessageIsAlwaysTheEndString(reason: WireProtocol.EndReason) {
        #expect(WireProtocol.endMessage(reason, extended: false) == WireProtocol.endMessage)
    }

    @Test func extendedCompletedIsThePlainEndString() {
        #expect(WireProtocol.endMessage(.completed, extended: true) == WireProtocol.endMessage)
    }

    @Test(arguments: [
        WireProtocol.EndReason.cancelled,
        .failed("boom"),
        .failed("a \"quoted\" reason, with / and é🌍 and a\nnewline"),
    ])
    func extendedEndMessageStartsWithTheEndStringAndCarriesTheReason(reason: WireProtocol.EndReason) {
        let message = WireProtocol.endMessage(reason, extended: true)
        #expect(message.hasPrefix(WireProtocol.endMessage))
        #expect(message.utf8.starts(with: WireProtocol.endMessage.utf8))
        #expect(message != WireProtocol.endMessage)
        #expect(WireProtocol.endReason(of: message) == reason)
    }

    @Test func plainEndStringIsCompleted() {
        #expect(WireProtocol.endReason(of: WireProtocol.endMessage) == .completed)
    }

    @Test(arguments: ["", "hello", "DONE", "\n\n\nDONE_SENTINEL", " " + WireProtocol.endMessage])
    func dataIsNotAnEnd(message: String) {
        #expect(WireProtocol.endReason(of: message) == nil)
    }

    private func jsonObject(_ text: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try #require(object as? [String: Any])
    }
}
