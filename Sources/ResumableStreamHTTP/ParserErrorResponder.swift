import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Answers a request that NIO's HTTP parser refuses (a request line too long, a bad method, bytes a
/// URL may not hold) with `400` and the JSON error body every other refusal has, then closes the
/// connection. Hummingbird would answer `400` with no body.
///
/// Only a request whose head could not be read is answered here: once a head has been read, its
/// response is the application's, and the error goes on down the pipeline as before.
final class ParserErrorResponder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let logger: Logger
    /// Requests whose head was read and whose response has not ended.
    private var responsesOwed = 0
    private var answered = false

    init(logger: Logger) {
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { responsesOwed += 1 }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { responsesOwed = max(responsesOwed - 1, 0) }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if answered, case ByteToMessageDecoderError.dataReceivedInErrorState = error {
            // The rest of what the client sent, which the decoder no longer reads.
            return
        }
        // A head cut short by the client's close (`invalidEOFState`) has nobody left to answer.
        guard let parserError = error as? HTTPParserError, parserError != .invalidEOFState, responsesOwed == 0, !answered, context.channel.isActive else {
            context.fireErrorCaught(error)
            return
        }
        answered = true
        logger.debug("refusing a request the HTTP parser cannot read", metadata: ["error": "\(parserError)"])
        // The error stops here, so that nothing else answers it a second time.
        let body = ByteBuffer(bytes: APIError(.badRequest, "bad_request", Self.message(for: parserError)).jsonBody)
        let head = HTTPResponse(status: .badRequest, headerFields: [
            .contentType: "application/json; charset=utf-8",
            .contentLength: String(body.readableBytes),
            .cacheControl: "no-store",
            .connection: "close",
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        // Half-closed once the answer is out, and fully closed when the client closes its end (or
        // the header timeout runs out): closing now, with the client's bytes still unread, would
        // reset the connection and could take the answer with it.
        context.close(mode: .output, promise: nil)
    }

    static func message(for error: HTTPParserError) -> String {
        switch error {
        case .headerOverflow:
            return "the request head is larger than the server reads"
        case .invalidMethod:
            return "the request method is not one that HTTP defines"
        case .invalidURL, .invalidCharactersUsed:
            return "the request target is not a valid URL: characters outside printable ASCII must be percent-encoded"
        case .invalidVersion:
            return "the request's HTTP version is not valid"
        case .invalidHeaderToken:
            return "a request header is not valid"
        case .invalidContentLength, .unexpectedContentLength:
            return "the request's Content-Length is not valid"
        default:
            return "the request is not valid HTTP (\(error))"
        }
    }
}

@available(*, unavailable)
extension ParserErrorResponder: Sendable {}
