import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ResumableStream

/// The HTTP API of resumable streams, as routes that any Hummingbird application can mount:
///
/// - `POST /streams/{id}`: creates the stream from the source its JSON body names, and answers
///   with the stream (`text/event-stream`); `409` when the id exists, live or finished.
/// - `POST /streams/{id}/ingest`: creates the stream from the request's own body, read as it
///   arrives; answers with a JSON summary when the body has ended.
/// - `GET /streams/{id}`: the stream from `Last-Event-ID`, else `?resumeAt=N`, else 0; `404`
///   when unknown, `422` when finished.
/// - `HEAD /streams/{id}` and `GET /streams/{id}/status`: none, live or finished.
/// - `DELETE /streams/{id}`: cancels the stream, wherever its producer runs.
///
/// `?format=raw` on `POST` and `GET` passes chunks through untouched instead of as SSE events.
public struct ResumableStreamRoutes<Context: RequestContext>: Sendable {
    public struct Configuration: Sendable {
        /// How long a stream may be idle before a heartbeat comment goes out.
        public var heartbeatInterval: Duration = .seconds(15)
        /// The `retry:` an SSE response starts with: how long a client waits before reconnecting.
        public var retryMilliseconds = 1000
        /// Concurrent stream responses (creators and followers) of this process; more get `503`.
        public var maxReaders = 10_000
        /// Streams whose source this process runs at once; more creations get `503`. Finished
        /// streams in their replay grace do not count: what they hold is bounded by the buffer
        /// limits, and who reads them by `maxReaders`.
        public var maxStreams = 1_000
        /// The largest JSON body of a create request.
        public var maxRequestBodySize = 64 * 1024
        /// The most one write to a client carries when chunks pile up, and (when the context offers
        /// its channel, see ``EventLoopRequestContext``) the most it carries at all, a larger
        /// chunk going out in several: what a client that stops reading can leave waiting in the
        /// process, beside the connection's own bound.
        public var writeSize = 4 * 1024
        /// Where idle timers run.
        public var eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
        /// Asked before each request about a stream does anything (``JWTStreamAccess``, or an
        /// application's own); `nil` lets every request through.
        public var access: (any StreamAccessControl)? = nil

        public init() {}
    }

    public let context: ResumableStreamContext
    public let sources: StreamSourceRegistry
    public let configuration: Configuration
    let metrics = StreamMetrics()

    /// `sources` gets `demo` added; a source registered under that name replaces it.
    public init(context: ResumableStreamContext, sources: StreamSourceRegistry = StreamSourceRegistry(), configuration: Configuration = Configuration()) {
        var registry = StreamSourceRegistry()
        DemoSource.register(in: &registry)
        registry.merge(sources)
        self.context = context
        self.sources = registry
        self.configuration = configuration
    }

    /// The stream responses in progress now.
    public var activeReaders: Int { metrics.activeReaders }

    /// Bytes of stream responses handed to clients' connections so far. A write is handed over
    /// only when the connection can take it, so a client that stops reading holds this still.
    public var sentBytes: Int { metrics.sentBytes }

    public func addRoutes(to router: some RouterMethods<Context>) {
        router.post("streams/{id}") { request, context in
            try await refusing {
                try await authorize(.create, request, context)
                return try await create(request, context)
            }
        }
        router.post("streams/{id}/ingest") { request, context in
            try await refusing {
                try await authorize(.ingest, request, context)
                return try await ingest(request, context)
            }
        }
        router.get("streams/{id}") { request, context in
            try await refusing {
                try await authorize(.read, request, context)
                return try await resume(request, context)
            }
        }
        router.head("streams/{id}") { request, context in
            try await refusing {
                try await authorize(.read, request, context)
                let id = try streamId(context)
                let status = try await self.context.status(of: id)
                var headers = HTTPFields()
                // A failed stream says so, and why: `Stream-Error` is its end event's code.
                headers[ResumableStreamHeaders.streamState] = status.failure == nil ? status.state.name : "failed"
                if let length = status.length {
                    headers[ResumableStreamHeaders.streamLength] = String(length)
                }
                if let failure = status.failure {
                    headers[ResumableStreamHeaders.streamError] = failure.code
                }
                return Response(status: status.state == .none ? .notFound : .ok, headers: headers)
            }
        }
        router.get("streams/{id}/status") { request, context in
            try await refusing {
                try await authorize(.read, request, context)
                let id = try streamId(context)
                let state = try await self.context.state(of: id)
                guard state != .none else { throw APIError.notFound(id) }
                return try json(["id": id, "state": state.name])
            }
        }
        router.delete("streams/{id}") { request, context in
            try await refusing {
                try await authorize(.cancel, request, context)
                return try await cancel(context)
            }
        }
        router.refuseOtherMethods("streams/{id}", allowing: [.get, .head, .post, .delete])
        router.refuseOtherMethods("streams/{id}/ingest", allowing: [.post])
        router.refuseOtherMethods("streams/{id}/status", allowing: [.get])
    }

    /// `/healthz`: the process is up. `/readyz`: it can take streams (the broker answers, and the
    /// process is not shutting down).
    public func addHealthRoutes(to router: some RouterMethods<Context>) {
        router.get("healthz") { _, _ in
            try json(["status": "ok"])
        }
        router.get("readyz") { _, _ in
            try await refusing {
                guard !self.context.isShuttingDown else { throw APIError(ResumableStreamError.shuttingDown) }
                do {
                    try await self.context.broker.ping()
                } catch {
                    throw APIError(.serviceUnavailable, "broker_unavailable", "the broker does not answer: \(error)")
                }
                return try json(["status": "ready"])
            }
        }
        router.refuseOtherMethods("healthz", allowing: [.get])
        router.refuseOtherMethods("readyz", allowing: [.get])
    }

    static var lastEventID: HTTPField.Name { HTTPField.Name("Last-Event-ID")! }

    // MARK: - Handlers

    private func create(_ request: Request, _ context: Context) async throws -> Response {
        let id = try streamId(context)
        let framing = try self.framing(request)
        try checkStreamCapacity()
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: configuration.maxRequestBodySize)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "body_too_large", "the body is larger than \(configuration.maxRequestBodySize) bytes")
        }
        let data = Data(buffer: body)
        let name = try Self.sourceName(in: data)
        guard let factory = sources.factory(named: name) else {
            throw APIError(.unprocessableContent, "unknown_source", "there is no source '\(name)'; there are: \(sources.names.joined(separator: ", "))")
        }
        guard let slot = metrics.takeReaderSlot(limit: configuration.maxReaders) else { throw tooManyReaders }
        // Checked first so that a taken id costs no upstream request; the claim below decides.
        let state = try await self.context.state(of: id)
        guard state == .none else { throw APIError.exists(id, state) }
        let source: StreamSource
        do {
            source = try await factory(StreamSourceParameters(body: data))
        } catch let error as StreamSourceError {
            throw APIError(error)
        }
        switch try await self.context.createStreamIfAbsent(id, source: { source }) {
        case .created(let reader):
            metrics.streamCreated()
            return streamResponse(framing, context).response(reader, slot: slot)
        case .exists(let state):
            throw APIError.exists(id, state)
        }
    }

    private func ingest(_ request: Request, _ context: Context) async throws -> Response {
        let id = try streamId(context)
        let continuing = try Self.streamOffset(request)
        try checkStreamCapacity()
        // Pulled by the producer, so the client's upload goes at the producer's pace. A body
        // that breaks off leaves a durable stream to be continued rather than failed.
        let body = StreamSource(IngestBody(TextPieces(request.body)))
        let reader: ResumableStreamReader
        if let offset = continuing {
            switch try await self.context.continueStream(id, from: offset, source: { body }) {
            case .continued(let continued, _):
                reader = continued
            case .notFound:
                throw APIError.notFound(id)
            case .finished(let length):
                throw APIError(.conflict, "stream_done", "the stream '\(id)' has ended", state: "finished", length: length)
            case .busy(let length):
                throw APIError(.conflict, "stream_has_producer", "another producer writes '\(id)' now, or its lease has not run out yet", state: "live", length: length)
            case .beyondLength(let length):
                throw APIError(.conflict, "offset_beyond_length", "Stream-Offset \(offset) is past the \(length) units stored of '\(id)'", state: "live", length: length)
            }
        } else {
            switch try await self.context.createStreamIfAbsent(id, continuable: true, source: { body }) {
            case .exists(let state):
                throw APIError.exists(id, state)
            case .created(let created):
                reader = created
            }
        }
        metrics.streamCreated()
        // The producer pulls the body in its own task; this handler waits for the end (the body
        // must be read while the request lasts) by reading the stream, which costs an offset.
        var offset = reader.startOffset
        do {
            for try await chunk in reader {
                offset = chunk.offset
            }
        } catch let error as ResumableStreamError {
            throw APIError(error)
        }
        return try json(["id": id, "state": "completed", "length": offset], status: continuing == nil ? .created : .ok)
    }

    private func resume(_ request: Request, _ context: Context) async throws -> Response {
        let id = try streamId(context)
        let framing = try self.framing(request)
        let offset = try Self.offset(request)
        guard let slot = metrics.takeReaderSlot(limit: configuration.maxReaders) else { throw tooManyReaders }
        // A client that goes away while the stream is looked up waits no longer than the broker's
        // timeout: Hummingbird cancels a handler on a closed connection only through
        // consumeWithCancellationOnInboundClose, which also closes the connection after every
        // response, and a client that reuses it then races that close.
        switch try await self.context.resumeExistingStream(id, resumeAt: offset) {
        case .notFound:
            throw APIError.notFound(id)
        case .finished:
            throw APIError.alreadyDone(id)
        case .stream(let reader):
            try reader.checkStart()
            return streamResponse(framing, context).response(reader, slot: slot)
        }
    }

    private func cancel(_ context: Context) async throws -> Response {
        let id = try streamId(context)
        if try await self.context.cancel(id) {
            return try json(["id": id, "cancelled": true], status: .accepted)
        }
        switch try await self.context.state(of: id) {
        case .none: throw APIError.notFound(id)
        case .finished: throw APIError.alreadyDone(id)
        case .live: throw APIError(.badGateway, "producer_unreachable", "no producer received the cancellation of '\(id)'", state: "live")
        }
    }

    // MARK: - Input

    func streamId(_ context: Context) throws -> String {
        guard let raw = context.parameters.get("id"), let id = Self.percentDecoded(raw) else {
            throw APIError(.badRequest, "invalid_stream_id", "the stream id is not valid percent-encoded UTF-8")
        }
        return id
    }

    /// Strict: every `%` starts two hex digits, and the bytes are UTF-8; `nil` otherwise.
    static func percentDecoded(_ text: String) -> String? {
        text.removingPercentEncoding
    }

    private func framing(_ request: Request) throws -> StreamFraming {
        guard let value = request.uri.queryParameters.get("format") else { return .sse }
        guard let framing = StreamFraming(rawValue: value) else {
            throw APIError(.badRequest, "invalid_format", "'format' must be sse or raw")
        }
        return framing
    }

    /// `Last-Event-ID` wins over `resumeAt`: a browser that reconnects by itself sends the URL it
    /// first opened (with its first `resumeAt`) and the id of the last event it received.
    /// `Stream-Offset` on an ingest: where the client's body goes on in the stream.
    static func streamOffset(_ request: Request) throws -> Int? {
        guard let text = request.headers[ResumableStreamHeaders.streamOffset] else { return nil }
        guard let offset = Int(text.trimmingCharacters(in: .whitespaces)), offset >= 0 else {
            throw APIError(.badRequest, "invalid_offset", "Stream-Offset must be a whole number of offset units, not '\(text)'")
        }
        return offset
    }

    static func offset(_ request: Request) throws -> Int {
        let header = request.headers[lastEventID].flatMap { $0.isEmpty ? nil : $0 }
        // Checked even when the header wins: a malformed `resumeAt` is refused whenever it is sent.
        let query = try request.uri.queryParameters.get("resumeAt").map { try offset($0, name: "resumeAt") }
        return try header.map { try offset($0, name: "Last-Event-ID") } ?? query ?? 0
    }

    private static func offset(_ text: String, name: String) throws -> Int {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let offset = Int(text) else {
            throw APIError(.badRequest, "invalid_offset", "\(name) must be a non-negative integer, not '\(text.prefix(40))'")
        }
        return offset
    }

    static func sourceName(in body: Data) throws -> String {
        guard (try? JSONSerialization.jsonObject(with: body)) is [String: Any] else {
            throw APIError(.badRequest, "invalid_json", "the body must be a JSON object such as {\"source\": \"demo\"}")
        }
        do {
            return try JSONDecoder().decode(CreateRequest.self, from: body).source
        } catch {
            throw APIError(.unprocessableContent, "invalid_body", StreamSourceParameters.describe(error))
        }
    }

    // MARK: - Output

    /// Creating (from a source or from a body) is refused at once when this process already
    /// produces its limit of streams.
    private func checkStreamCapacity() throws {
        guard self.context.activeStreams.producing < configuration.maxStreams else {
            throw APIError(.serviceUnavailable, "too_many_streams", "this instance runs the sources of \(configuration.maxStreams) streams already")
        }
    }

    private var tooManyReaders: APIError {
        APIError(.serviceUnavailable, "too_many_readers", "this instance serves \(configuration.maxReaders) streams already")
    }

    private func streamResponse(_ framing: StreamFraming, _ context: Context) -> StreamResponse {
        let connection = context as? any EventLoopRequestContext
        return StreamResponse(
            framer: StreamFramer(framing: framing, retryMilliseconds: configuration.retryMilliseconds),
            heartbeat: TimeAmount(configuration.heartbeatInterval),
            writeSize: configuration.writeSize,
            eventLoop: connection?.eventLoop ?? configuration.eventLoopGroup.any(),
            writesOnEventLoop: connection != nil,
            channel: connection?.channel,
            metrics: metrics
        )
    }

    /// Turns every refusal into its JSON error, and counts it. The coordinator's failures are
    /// typed (a broker that fails is ``ResumableStreamError/broker(_:)``, a 503); anything else
    /// that escapes is a bug of this layer, and still gets the JSON shape rather than a bare 500.
    private func refusing(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as APIError {
            metrics.refused(error)
            throw error
        } catch let error as ResumableStreamError {
            let error = APIError(error)
            metrics.refused(error)
            throw error
        } catch is CancellationError {
            // The client has gone: nobody reads the answer.
            throw CancellationError()
        } catch {
            context.options.logger.error("a request failed unexpectedly", metadata: ["error": "\(error)"])
            let error = APIError(.internalServerError, "internal_error", "the request failed unexpectedly")
            metrics.refused(error)
            throw error
        }
    }
}

/// The part of a create request's body that the routes read; the source reads its parameters.
private struct CreateRequest: Decodable {
    let source: String
}

/// A JSON response.
func json(_ object: [String: any Sendable], status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return Response(
        status: status,
        headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
    )
}

extension StreamSourceRegistry {
    mutating func merge(_ other: StreamSourceRegistry) {
        for name in other.names {
            if let factory = other.factory(named: name) {
                register(name, factory: factory)
            }
        }
    }
}
