import HummingbirdCore
import Logging
import NIOCore

extension HTTPServerBuilder {
    /// HTTP/1.1 as Hummingbird serves it, with two things added to every connection:
    /// a request that NIO's parser refuses gets `400` with the JSON error body (``ParserErrorResponder``),
    /// and a connection is closed when its request head takes longer than `headerTimeout` or it is
    /// idle between requests for `idleTimeout`, never while it owes a response
    /// (``ConnectionTimeoutHandler``); what a client that does not read can make the
    /// connection hold is bounded (``ConnectionBufferLimits``); and a stream response can write
    /// its body from the connection's event loop (``StreamWriterHandler``).
    ///
    /// Each request is answered in a child task of the connection's task. A task keeps every
    /// piece of stack it has grown to until it ends, and routing a request through Hummingbird
    /// and the middleware grows it by some 17 KiB: answered in the connection's own task, that
    /// stays with the connection for as long as it is open. A stream response written from the
    /// event loop ends its request's task at once, so a follower that waits for text holds its
    /// connection and the connection's task at rest, no more.
    public static func resumableStream(headerTimeout: Duration, idleTimeout: Duration, logger: Logger) -> HTTPServerBuilder {
        let configuration = HTTP1Channel.Configuration(additionalChannelHandlers: [
            // First, right after the HTTP codec, so that it sees every request before the
            // handlers that count them; the body parts it frames go straight to the pipeline's
            // head, and the response's end through all of them.
            StreamWriterHandler(),
            ConnectionBufferLimits(pendingBytes: 8 * 1024, unsentBytes: 64 * 1024),
            ParserErrorResponder(logger: logger),
            ConnectionTimeoutHandler(headerTimeout: TimeAmount(headerTimeout), idleTimeout: TimeAmount(idleTimeout), logger: logger),
        ])
        return HTTPServerBuilder { responder in
            HTTP1Channel(responder: answeringInChildTask(responder), configuration: configuration)
        }
    }

    private static func answeringInChildTask(_ responder: @escaping HTTPChannelHandler.Responder) -> HTTPChannelHandler.Responder {
        { request, responseWriter, channel in
            let handOver = ResponseWriterHandOver(responseWriter)
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    try await responder(request, handOver.take(), channel)
                }
            }
        }
    }
}

/// Moves the connection's response writer, which cannot be copied, into the request's task.
private final class ResponseWriterHandOver: @unchecked Sendable {
    // Written once here and taken once by the child task, which starts after this is built and
    // before the parent looks at it again (it never does).
    private var writer: ResponseWriter?

    init(_ writer: consuming ResponseWriter) {
        self.writer = consume writer
    }

    func take() -> ResponseWriter {
        guard let writer = writer.take() else {
            preconditionFailure("a request's response writer is taken once")
        }
        return writer
    }
}
