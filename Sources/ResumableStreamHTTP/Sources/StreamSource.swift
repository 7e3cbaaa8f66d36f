import Foundation

/// The text of a new stream, pulled by its producer at the producer's pace: any async sequence of
/// strings, behind one type so that sources of any kind can be registered by name.
public struct StreamSource: AsyncSequence, Sendable {
    public typealias Element = String

    private let makeIterator: @Sendable () -> AsyncIterator

    public init<Base: AsyncSequence & Sendable>(_ base: Base) where Base.Element == String {
        self.makeIterator = { AsyncIterator(base.makeAsyncIterator()) }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        private var base: any AsyncIteratorProtocol<String, any Error>

        init<Base: AsyncIteratorProtocol>(_ base: Base) where Base.Element == String {
            self.base = Erased(base: base)
        }

        public mutating func next() async throws -> String? {
            try await base.next()
        }

        /// Gives any iterator of strings the `any Error` failure type that the existential needs.
        private struct Erased<Base: AsyncIteratorProtocol>: AsyncIteratorProtocol where Base.Element == String {
            var base: Base
            mutating func next() async throws -> String? { try await base.next() }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        makeIterator()
    }
}

/// The `parameters` of a create request, for the source that the request names.
///
/// The body is `{"source": "<name>", "parameters": {...}}`; a source decodes its parameters into a
/// type of its own. A body without `parameters` decodes as an empty object, so that parameters
/// with defaults may be left out.
public struct StreamSourceParameters: Sendable {
    /// The request's whole body.
    let body: Data

    init(body: Data) {
        self.body = body
    }

    public func decode<Parameters: Decodable>(_ type: Parameters.Type = Parameters.self) throws(StreamSourceError) -> Parameters {
        do {
            if let parameters = try JSONDecoder().decode(Envelope<Parameters>.self, from: body).parameters {
                return parameters
            }
            return try JSONDecoder().decode(Parameters.self, from: Data("{}".utf8))
        } catch {
            throw .invalidParameters(Self.describe(error))
        }
    }

    private struct Envelope<Parameters: Decodable>: Decodable {
        let parameters: Parameters?
    }

    /// Says which field was wrong, in words a client can act on.
    static func describe(_ error: any Error) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? "the body" : "'\(path)'"
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?:
            let parent = path(context)
            return "\(parent == "the body" ? "" : parent + ": ")'\(key.stringValue)' is missing"
        case .typeMismatch(let type, let context)?:
            return "\(path(context)) should be \(Self.name(of: type))"
        case .valueNotFound(let type, let context)?:
            return "\(path(context)) should be \(Self.name(of: type)), not null"
        case .dataCorrupted(let context)?:
            return context.codingPath.isEmpty ? "the body is not valid JSON" : "\(path(context)): \(context.debugDescription)"
        case nil:
            return "\(error)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        default: return "\(type)"
        }
    }
}

/// Why a source could not be started; the HTTP layer answers each with its own status.
public enum StreamSourceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The request's parameters do not suit the source (422).
    case invalidParameters(String)
    /// The source is switched off, or the request is not allowed to use it (403).
    case forbidden(String)
    /// The source depends on an upstream service that failed or refused (502).
    case upstreamFailed(String)

    public var description: String {
        switch self {
        case .invalidParameters(let reason): return reason
        case .forbidden(let reason): return reason
        case .upstreamFailed(let reason): return reason
        }
    }
}

/// The sources that `POST /streams/{id}` may name.
///
/// A factory is called when a request names it, before the stream is created: it checks the
/// parameters (and may connect upstream), so that a bad request is refused with nothing started.
/// The ``StreamSource`` it returns is then pulled by the producer, to its end, whoever reads.
public struct StreamSourceRegistry: Sendable {
    public typealias Factory = @Sendable (StreamSourceParameters) async throws -> StreamSource

    private var factories: [String: Factory] = [:]

    public init() {}

    /// Adds a source, or replaces the one of that name.
    public mutating func register(_ name: String, factory: @escaping Factory) {
        factories[name] = factory
    }

    /// The registered names, sorted.
    public var names: [String] { factories.keys.sorted() }

    func factory(named name: String) -> Factory? {
        factories[name]
    }
}
