import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS

/// TLS to Redis (`rediss://`): the server's certificate is verified against `caFile` (else the
/// system's trust store) and against the URL's host; `certificateFile` and `keyFile` (PEM) are
/// this client's, for servers that ask for one (`tls-auth-clients yes`).
public struct RedisTLS: Sendable, Hashable {
    public var caFile: String?
    public var certificateFile: String?
    public var keyFile: String?

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// The context every connection of a client shares; a file that cannot be read, or a
    /// certificate without its key, is an error here, before any connection.
    func makeContext() throws(RedisConfigurationError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        do {
            if let caFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            switch (certificateFile, keyFile) {
            case (let certificate?, let key?):
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            case (nil, nil):
                break
            default:
                throw RedisConfigurationError(message: "a client certificate needs its key, and a key its certificate")
            }
            return try NIOSSLContext(configuration: configuration)
        } catch let error as RedisConfigurationError {
            throw error
        } catch {
            throw RedisConfigurationError(message: "TLS: \(error)")
        }
    }
}

/// Completes when the TLS handshake has, and fails with its error: so that a connection whose
/// certificate does not verify fails to open, with the reason, rather than at its first command.
/// It also keeps the first TLS error after the handshake: a server that wants a client certificate
/// says so only then (TLS 1.3), and the connection's setup reports it rather than a bare close.
final class TLSHandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let done: EventLoopPromise<Void>
    private let laterError: NIOLockedValueBox<(any Error)?>
    private var completed = false

    init(done: EventLoopPromise<Void>, laterError: NIOLockedValueBox<(any Error)?>) {
        self.done = done
        self.laterError = laterError
    }

    private func complete(_ result: Result<Void, any Error>) {
        guard !completed else { return }
        completed = true
        done.completeWith(result)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            complete(.success(()))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if completed {
            laterError.withLockedValue { $0 = $0 ?? error }
        }
        complete(.failure(error))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete(.failure(RedisConnectionError.connectionClosed))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        complete(.failure(RedisConnectionError.connectionClosed))
    }
}
