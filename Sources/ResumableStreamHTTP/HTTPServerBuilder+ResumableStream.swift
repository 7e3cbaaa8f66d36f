import HummingbirdCore
import Logging
import NIOCore

extension HTTPServerBuilder {
    /// HTTP/1.1 as Hummingbird serves it, with two things added to every connection:
    /// a request that NIO's parser refuses gets `400` with the JSON error body (``ParserErrorResponder``),
    /// and a connection is closed when its request head takes longer than `headerTimeout` or it is
    /// idle between requests for `idleTimeout`, never while it owes a response
    /// (``ConnectionTimeoutHandler``); and what a client that does not read can make the
    /// connection hold is bounded (``ConnectionWriteLimits``).
    public static func resumableStream(headerTimeout: Duration, idleTimeout: Duration, logger: Logger) -> HTTPServerBuilder {
        .http1(configuration: HTTP1Channel.Configuration(additionalChannelHandlers: [
            ConnectionWriteLimits(pendingBytes: 8 * 1024, unsentBytes: 64 * 1024),
            ParserErrorResponder(logger: logger),
            ConnectionTimeoutHandler(headerTimeout: TimeAmount(headerTimeout), idleTimeout: TimeAmount(idleTimeout), logger: logger),
        ]))
    }
}
