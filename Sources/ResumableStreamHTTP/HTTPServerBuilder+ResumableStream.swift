import HummingbirdCore
import Logging
import NIOCore

extension HTTPServerBuilder {
    /// HTTP/1.1 as Hummingbird serves it, with two things added to every connection:
    /// a request that NIO's parser refuses gets `400` with the JSON error body (``ParserErrorResponder``),
    /// and a connection is closed when its request head takes longer than `headerTimeout` or it is
    /// idle between requests for `idleTimeout`, never while it owes a response
    /// (``ConnectionTimeoutHandler``); what a client that does not read can make the
    /// connection hold is bounded (``ConnectionWriteLimits``); and a stream response can write
    /// its body from the connection's event loop (``StreamWriterHandler``).
    public static func resumableStream(headerTimeout: Duration, idleTimeout: Duration, logger: Logger) -> HTTPServerBuilder {
        .http1(configuration: HTTP1Channel.Configuration(additionalChannelHandlers: [
            // First, right after the HTTP codec: the body parts it writes pass only the handlers
            // that encode them. The handlers after it look at a response's head and end, which
            // Hummingbird's writer sends through all of them.
            StreamWriterHandler(),
            ConnectionWriteLimits(pendingBytes: 8 * 1024, unsentBytes: 64 * 1024),
            ParserErrorResponder(logger: logger),
            ConnectionTimeoutHandler(headerTimeout: TimeAmount(headerTimeout), idleTimeout: TimeAmount(idleTimeout), logger: logger),
        ]))
    }
}
