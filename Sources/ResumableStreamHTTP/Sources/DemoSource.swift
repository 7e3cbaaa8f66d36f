/// A token ticker, for trying the service and for tests: `count` tokens, one every `intervalMs`.
///
/// Parameters (all optional): `count` (default 10, at most 1,000,000), `intervalMs` (default 100,
/// at most 60,000), `tokenSize` (the length of each token, 1 to 65,536; without it token `n` is
/// `"token n "`), and `failAfter` (fail the stream after that many tokens, to see how a failed
/// stream ends).
public struct DemoSource: Sendable {
    public struct Parameters: Decodable, Sendable {
        public var count: Int = 10
        public var intervalMs: Int = 100
        public var tokenSize: Int?
        public var failAfter: Int?

        public init(count: Int = 10, intervalMs: Int = 100, tokenSize: Int? = nil, failAfter: Int? = nil) {
            self.count = count
            self.intervalMs = intervalMs
            self.tokenSize = tokenSize
            self.failAfter = failAfter
        }

        public init(from decoder: any Decoder) throws {
            enum Key: String, CodingKey { case count, intervalMs, tokenSize, failAfter }
            let container = try decoder.container(keyedBy: Key.self)
            count = try container.decodeIfPresent(Int.self, forKey: .count) ?? count
            intervalMs = try container.decodeIfPresent(Int.self, forKey: .intervalMs) ?? intervalMs
            tokenSize = try container.decodeIfPresent(Int.self, forKey: .tokenSize)
            failAfter = try container.decodeIfPresent(Int.self, forKey: .failAfter)
        }

        func validate() throws(StreamSourceError) {
            guard (0...1_000_000).contains(count) else { throw .invalidParameters("'count' must be between 0 and 1000000") }
            guard (0...60_000).contains(intervalMs) else { throw .invalidParameters("'intervalMs' must be between 0 and 60000") }
            if let tokenSize, !(1...65_536).contains(tokenSize) {
                throw .invalidParameters("'tokenSize' must be between 1 and 65536")
            }
            if let failAfter, failAfter < 0 { throw .invalidParameters("'failAfter' must not be negative") }
        }
    }

    /// The error a demo stream fails with when asked to.
    public struct Failed: Error, CustomStringConvertible {
        public let afterTokens: Int
        public var description: String { "the demo source failed after \(afterTokens) tokens, as asked" }
    }

    /// Token `index` (from 1) of a demo stream.
    public static func token(_ index: Int, size: Int?) -> String {
        guard let size else { return "token \(index) " }
        let letter = Character(Unicode.Scalar(UInt8(ascii: "a") + UInt8(index % 26)))
        return String(repeating: letter, count: size - 1) + " "
    }

    /// The whole text of a demo stream that runs to its end.
    public static func text(_ parameters: Parameters) -> String {
        (0..<parameters.count).map { token($0 + 1, size: parameters.tokenSize) }.joined()
    }

    public static func source(_ parameters: Parameters) throws(StreamSourceError) -> StreamSource {
        try parameters.validate()
        return StreamSource(TokenSequence(parameters: parameters))
    }

    static func register(in registry: inout StreamSourceRegistry) {
        registry.register("demo") { parameters in
            try source(parameters.decode(Parameters.self))
        }
    }

    private struct TokenSequence: AsyncSequence, Sendable {
        typealias Element = String
        let parameters: Parameters

        struct AsyncIterator: AsyncIteratorProtocol {
            var index: Int
            let end: Int
            let parameters: Parameters

            mutating func next() async throws -> String? {
                if let failAfter = parameters.failAfter, index - 1 == failAfter {
                    throw DemoSource.Failed(afterTokens: failAfter)
                }
                guard index < end else { return nil }
                // The first token comes at once, the next ones after each interval.
                if index > 1, parameters.intervalMs > 0 {
                    try await Task.sleep(for: .milliseconds(parameters.intervalMs))
                }
                defer { index += 1 }
                return DemoSource.token(index, size: parameters.tokenSize)
            }
        }

        func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(index: 1, end: parameters.count + 1, parameters: parameters)
        }
    }
}
