import HummingbirdCore
import Logging
import NIOCore

extension HTTPServerBuilder {
    /// HTTP/1.1 as Hummingbird serves it, with two things added to every connection:
    /// a request that NIO's parser refuses gets `400` with the JSON error body (``ParserErrorResponder``),
    /// and a connection is closed when its request head takes longer than `headerTimeout` or it is
    /// idle between requests for `idleTimeout`, never while it owes a response
    /// (``ConnectionTimeoutHandler``).
    public static func resumableStream(headerTimeout: Duration, idleTimeout: Duration, logger: Logger) -> HTTPServerBuilder {
        .http1(configuration: HTTP1Channel.Configuration(additionalChannelHandlers: [
            ParserErrorResponder(logger: logger),
            ConnectionTimeoutHandler(headerTimeout: TimeAmount(headerTimeout), idleTimeout: TimeAmount(idleTimeout), logger: logger),
        ]))
    }
}
