import ResumableStreamHTTP
import Synchronization

/// A source the test drives: what the test sends is the stream's next chunk, when the test sends
/// it. Registered as `gate` through the library's registry, as an application would register its
/// own sources; `{"source": "gate", "parameters": {"gate": "<name>"}}` picks one.
final class Gate: Sendable {
    let name: String
    let stream: AsyncThrowingStream<String, any Error>
    private let continuation: AsyncThrowingStream<String, any Error>.Continuation

    init(name: String) {
        self.name = name
        (stream, continuation) = AsyncThrowingStream.makeStream()
    }

    func send(_ chunk: String) { continuation.yield(chunk) }
    func finish() { continuation.finish() }
    func fail() { continuation.finish(throwing: GateFailed()) }

    struct GateFailed: Error {}

    /// `{"source":"gate","parameters":{"gate":"<name>"}}`
    var body: String { #"{"source":"gate","parameters":{"gate":"\#(name)"}}"# }

    private static let open = Mutex<[String: Gate]>([:])

    static func make() -> Gate {
        let gate = Gate(name: "gate-\(UInt64.random(in: 0...UInt64.max))")
        open.withLock { $0[gate.name] = gate }
        return gate
    }

    /// The registry the tests' servers use: `gate` beside the built-in sources.
    static var sources: StreamSourceRegistry {
        struct Parameters: Decodable { let gate: String }
        var registry = StreamSourceRegistry()
        registry.register("gate") { parameters in
            let name = try parameters.decode(Parameters.self).gate
            guard let gate = open.withLock({ $0.removeValue(forKey: name) }) else {
                throw StreamSourceError.invalidParameters("no gate '\(name)'")
            }
            return StreamSource(gate.stream)
        }
        return registry
    }
}
