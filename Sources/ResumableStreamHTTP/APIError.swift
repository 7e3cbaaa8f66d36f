import Foundation
import Hummingbird
import ResumableStream

/// An HTTP error with a JSON body that says what was wrong:
/// `{"error": "<code>", "message": "<sentence>"}`, plus `"state"` where it helps.
public struct APIError: HTTPResponseError, Sendable, Equatable {
    public let status: HTTPResponse.Status
    /// A stable, machine-readable code (`stream_not_found`, `invalid_offset`, ...).
    public let code: String
    public let message: String
    /// The stream's state, for errors about a stream that exists.
    public let state: String?
    /// The stream's stored length, for errors about where a producer may continue it; also sent
    /// as the `Stream-Length` header.
    public let length: Int?
    /// More headers of the response: `WWW-Authenticate` on a refused token, CORS headers.
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, state: String? = nil, length: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.state = state
        self.length = length
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"]
        if let length {
            headers[ResumableStreamHeaders.streamLength] = String(length)
        }
        headers.append(contentsOf: self.headers)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: jsonBody)))
    }

    var jsonBody: Data {
        struct Body: Encodable {
            let error: String
            let message: String
            let state: String?
            let length: Int?
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(Body(error: code, message: message, state: state, length: length))) ?? Data(#"{"error":"internal"}"#.utf8)
    }
}

extension APIError {
    static func notFound(_ id: String) -> APIError {
        APIError(.notFound, "stream_not_found", "there is no stream '\(id)'")
    }

    /// The reference's status and words for a stream that can no longer be resumed.
    static func alreadyDone(_ id: String) -> APIError {
        APIError(.unprocessableContent, "stream_done", "Stream is already done", state: "finished")
    }

    static func exists(_ id: String, _ state: ResumableStreamState) -> APIError {
        APIError(.conflict, "stream_exists", "the stream '\(id)' already exists", state: state.name)
    }

    /// What a coordinator error means to an HTTP client, when it happens before the response.
    init(_ error: ResumableStreamError) {
        switch error {
        case .invalidStreamId(let reason):
            self.init(.badRequest, "invalid_stream_id", reason)
        case .invalidOffset, .offsetBeyondEnd:
            self.init(.rangeNotSatisfiable, "invalid_offset", error.description)
        case .acknowledgementTimeout:
            self.init(.gatewayTimeout, "producer_timeout", error.description)
        case .shuttingDown:
            self.init(.serviceUnavailable, "shutting_down", error.description)
        case .broker:
            self.init(.serviceUnavailable, "broker_unavailable", error.description)
        case .streamBufferLimitExceeded, .processBufferLimitExceeded:
            self.init(.contentTooLarge, "buffer_limit_exceeded", error.description)
        case .cancelled:
            self.init(.conflict, "stream_cancelled", error.description, state: "cancelled")
        case .sourceFailed, .missedEnd, .producerLost:
            self.init(.badGateway, "stream_failed", error.description)
        case .notDurable:
            self.init(.badRequest, "not_durable", error.description)
        }
    }

    init(_ error: StreamSourceError) {
        switch error {
        case .invalidParameters(let reason): self.init(.unprocessableContent, "invalid_parameters", reason)
        case .forbidden(let reason): self.init(.forbidden, "source_forbidden", reason)
        case .upstreamFailed(let reason): self.init(.badGateway, "upstream_failed", reason)
        }
    }
}

extension ResumableStreamState {
    var name: String {
        switch self {
        case .none: return "none"
        case .live: return "live"
        case .finished: return "finished"
        }
    }
}

extension ResumableStreamError {
    /// The code a failed stream's final event carries.
    var code: String {
        switch self {
        case .cancelled: return "cancelled"
        case .sourceFailed: return "source_failed"
        case .streamBufferLimitExceeded, .processBufferLimitExceeded: return "buffer_limit_exceeded"
        case .acknowledgementTimeout: return "producer_timeout"
        case .invalidOffset, .offsetBeyondEnd: return "invalid_offset"
        case .missedEnd: return "missed_end"
        case .producerLost: return "producer_lost"
        case .invalidStreamId: return "invalid_stream_id"
        case .broker: return "broker_unavailable"
        case .shuttingDown: return "shutting_down"
        case .notDurable: return "not_durable"
        }
    }
}
