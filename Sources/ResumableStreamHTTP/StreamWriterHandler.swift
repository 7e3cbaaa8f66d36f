import NIOCore
import NIOHTTPTypes

/// The place in a connection's pipeline where a stream response written from the connection's
/// event loop (``ChannelStreamWriter``) writes its body, from which it hears that the connection
/// can take more or has closed, and which keeps the connection's other requests and its closing
/// behind that response.
///
/// It sits right after the HTTP codec, before the handlers that look at a response's head and end
/// (the connection's timeouts, Hummingbird's connection state), which do nothing with body parts.
/// The head goes through Hummingbird's writer; the writer's body parts are framed here as HTTP/1.1
/// chunks and start at the pipeline's head (``ChunkOutlet``), past every handler; the response's
/// end starts at the pipeline's tail, so that every handler sees it as if Hummingbird had written
/// it. Hummingbird's task for the connection has moved on by then: it waits for the next request.
///
/// So that this stays one response at a time:
/// - a request that arrives while a response is owed is held here, and the connection reads no
///   more, until that response has ended (HTTP/1.1 pipelining, in order);
/// - the connection's output is closed (Hummingbird does so when its task ends, after a request
///   with `Connection: close` or a client that closed its side) only once the body is written;
/// - a connection whose task is cancelled (the server gives up on it) stops the writer and closes.
final class StreamWriterHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var context: ChannelHandlerContext?
    /// Where the body's chunks enter the pipeline: first, before the HTTP/1 encoder.
    private let outlet = ChunkOutlet()
    /// The context's channel, kept: asked for its writability before every write.
    private var channel: (any Channel)?
    /// The response being written, if it writes from here.
    private var writer: ChannelStreamWriter?
    /// A request was let through whose response has not ended: the next one waits.
    private var responseOwed = false
    /// A request (and what followed it) that came while a response was owed, in order.
    private var held: [NIOAny] = []
    /// A read the connection asked for while requests were held, issued once they are let go.
    private var readDeferred = false
    /// The client closed its side while a request was held: told once the request is let go.
    private var inputClosedHeld = false
    /// Hummingbird's closing of the output, asked while the writer was writing.
    private var outputClose: OutputClose = .notAsked

    private enum OutputClose {
        case notAsked
        case deferred(EventLoopPromise<Void>?)
    }

    init() {}

    var isWritable: Bool { channel?.isWritable ?? false }

    /// Makes `writer` the one told about the connection; `false` if the connection has closed.
    func attach(_ writer: ChannelStreamWriter) -> Bool {
        guard let channel, channel.isActive else { return false }
        self.writer = writer
        return true
    }

    /// A buffer for up to `capacity` bytes of body, with room for its chunk's framing
    /// (``HTTPChunk``).
    func makeBody(capacity: Int) -> ByteBuffer {
        HTTPChunk.makeBuffer(capacity: capacity, allocator: channel?.allocator ?? ByteBufferAllocator())
    }

    /// Writes `body` as one chunk of the response's chunked body (``HTTPChunk``), at the
    /// pipeline's head: NIO's HTTP/1 encoder would frame it in three buffers, three pending writes
    /// and three iovecs, on the way of every follower's every chunk. Stream responses have no
    /// length and Hummingbird's codec answers every request as HTTP/1.1, so the encoder has made
    /// them chunked; the response's end still goes through it.
    func write(_ body: consuming ByteBuffer) {
        guard let outlet = outlet.context,
              let chunk = HTTPChunk.frame(body, allocator: channel?.allocator ?? ByteBufferAllocator())
        else { return }
        outlet.write(NIOAny(chunk), promise: nil)
    }

    func flush() {
        outlet.context?.flush()
    }

    /// The writer is done: see ``ResponseEnding``. Hummingbird's closing of the output, if it
    /// asked meanwhile, follows.
    func detach(_ writer: ChannelStreamWriter, ending: ResponseEnding) {
        guard self.writer === writer else { return }
        self.writer = nil
        let outputClose = self.outputClose
        self.outputClose = .notAsked
        guard let context else { return }
        switch ending {
        case .end:
            // A deferred closing of the output waits until the end has gone to the socket.
            var written: EventLoopPromise<Void>?
            if case .deferred(let promise) = outputClose {
                written = context.eventLoop.makePromise()
                written?.futureResult.assumeIsolated().whenComplete { _ in context.close(mode: .output, promise: promise) }
            }
            context.pipeline.syncOperations.write(NIOAny(HTTPResponsePart.end(nil)), promise: written)
            context.pipeline.syncOperations.flush()
        case .breakOff:
            context.flush()
            context.pipeline.syncOperations.close(mode: .all, promise: nil)
        case .closed:
            if case .deferred(let promise) = outputClose {
                context.close(mode: .output, promise: promise)
            }
        }
    }

    enum ResponseEnding {
        /// The body is whole: the response's end goes through the whole pipeline, from its tail.
        case end
        /// The body must not look whole (raw text of a stream that failed): the connection closes.
        case breakOff
        /// The connection is gone, or the server gave up on it: nothing more is written.
        case closed
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.channel = context.channel
        try? context.pipeline.syncOperations.addHandler(outlet, position: .first)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        writer?.stop(ChannelError.ioOnClosedChannel)
        self.context = nil
        self.channel = nil
    }

    // MARK: Requests, one response at a time

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if held.isEmpty, case .head = unwrapInboundIn(data) {
            guard !responseOwed else {
                held.append(data)
                return
            }
            responseOwed = true
        } else if !held.isEmpty {
            held.append(data)
            return
        }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !held.isEmpty, case ChannelEvent.inputClosed? = event as? ChannelEvent {
            inputClosedHeld = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        guard held.isEmpty else {
            readDeferred = true
            return
        }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let isEnd = if case .end = unwrapOutboundIn(data) { true } else { false }
        context.write(data, promise: promise)
        if isEnd {
            responseOwed = false
            releaseHeld(context: context)
        }
    }

    /// Lets the held request through, now that the response before it has ended.
    private func releaseHeld(context: ChannelHandlerContext) {
        guard !held.isEmpty else { return }
        let parts = held
        held = []
        // A second request among them is held again, behind the first one's response.
        for part in parts {
            channelRead(context: context, data: part)
        }
        context.fireChannelReadComplete()
        guard held.isEmpty else { return }
        if inputClosedHeld {
            inputClosedHeld = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        if readDeferred {
            readDeferred = false
            context.read()
        }
    }

    // MARK: The connection

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if let writer {
            switch mode {
            case .output:
                // Hummingbird's task has ended its side; the body has not.
                switch outputClose {
                case .deferred(let earlier?):
                    if let promise { earlier.futureResult.cascade(to: promise) }
                case .deferred(nil), .notAsked:
                    outputClose = .deferred(promise)
                }
                return
            case .input:
                // Hummingbird's task was cancelled: the server gives up on the connection.
                writer.stop(CancellationError())
                context.close(mode: .all, promise: promise)
                return
            case .all:
                break
            }
        }
        context.close(mode: mode, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writer?.pump()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        writer?.stop(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}

/// The head end of the pipeline, for the response body's framed chunks (see
/// ``StreamWriterHandler/write(_:)``): what is written from its context goes to the socket.
final class ChunkOutlet: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer

    private(set) var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }
}
