import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Streams an upstream HTTP response into a new stream, piece by piece as the upstream sends it:
/// a resumable front for any streaming API. The body is pulled as the producer pulls, so the
/// upstream is read at the producer's pace and never held whole.
///
/// Parameters: `url` (required, http or https), `method` (`GET` by default, or `POST`),
/// `headers` (an object of strings) and `body` (a string, sent as it is).
///
/// The upstream is asked before the stream is created: a refused origin answers 403, an upstream
/// that cannot be reached or answers other than 2xx answers 502, and in each case no stream
/// exists. Once the stream runs, an upstream that breaks off fails the stream.
public struct ProxySource: Sendable {
    public struct Configuration: Sendable {
        /// The origins (`scheme://host[:port]`) the proxy may reach; `["*"]` allows any. Empty
        /// switches the proxy off: a service that fetches any URL it is given is an open proxy.
        public var allowedOrigins: [String]
        /// How long the upstream has to answer with its status and headers.
        public var responseTimeout: TimeAmount

        public init(allowedOrigins: [String] = [], responseTimeout: TimeAmount = .seconds(30)) {
            self.allowedOrigins = allowedOrigins
            self.responseTimeout = responseTimeout
        }
    }

    public struct Parameters: Decodable, Sendable {
        public var url: String
        public var method: String?
        public var headers: [String: String]?
        public var body: String?
    }

    let configuration: Configuration
    let httpClient: HTTPClient

    public init(configuration: Configuration, httpClient: HTTPClient) {
        self.configuration = configuration
        self.httpClient = httpClient
    }

    public func register(in registry: inout StreamSourceRegistry) {
        registry.register("proxy") { parameters in
            try await self.source(parameters.decode(Parameters.self))
        }
    }

    /// Sends the upstream request and, once it answered 2xx, returns its body as a source.
    public func source(_ parameters: Parameters) async throws(StreamSourceError) -> StreamSource {
        let origin = try Self.origin(of: parameters.url)
        guard !configuration.allowedOrigins.isEmpty else {
            throw .forbidden("the proxy source is switched off; allow upstream origins to use it")
        }
        guard configuration.allowedOrigins.contains("*") || configuration.allowedOrigins.contains(origin) else {
            throw .forbidden("the origin \(origin) is not one the proxy may reach")
        }
        var request = HTTPClientRequest(url: parameters.url)
        switch parameters.method?.uppercased() ?? "GET" {
        case "GET": request.method = .GET
        case "POST": request.method = .POST
        default: throw .invalidParameters("'method' must be GET or POST")
        }
        for (name, value) in parameters.headers ?? [:] {
            request.headers.add(name: name, value: value)
        }
        if let body = parameters.body {
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response: HTTPClientResponse
        do {
            response = try await httpClient.execute(request, timeout: configuration.responseTimeout)
        } catch {
            throw .upstreamFailed("the upstream \(origin) could not be reached: \(error)")
        }
        guard (200..<300).contains(response.status.code) else {
            throw .upstreamFailed("the upstream answered \(response.status.code) \(response.status.reasonPhrase)")
        }
        return StreamSource(TextPieces(response.body))
    }

    /// `scheme://host[:port]`, lowercased, the port only when it is not the scheme's default.
    static func origin(of url: String) throws(StreamSourceError) -> String {
        guard let components = URLComponents(string: url),
            let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.host?.lowercased(), !host.isEmpty
        else {
            throw .invalidParameters("'url' must be an absolute http or https URL")
        }
        let defaultPort = scheme == "https" ? 443 : 80
        guard let port = components.port, port != defaultPort else { return "\(scheme)://\(host)" }
        return "\(scheme)://\(host):\(port)"
    }
}
