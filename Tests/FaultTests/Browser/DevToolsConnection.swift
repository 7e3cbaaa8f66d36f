import Foundation
import TestSupport
import NIOCore
import NIOPosix
import Synchronization

/// The Chrome DevTools protocol over the pipes of Chromium's `--remote-debugging-pipe`: each
/// message is one JSON object ended by a NUL byte, commands (`id`, `method`, `params`, and the
/// `sessionId` of the page they are for) one way, their replies and the browser's events the
/// other. A reply is matched to its command by `id`.
final class DevToolsConnection: Sendable {
    struct ProtocolError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    private struct State {
        var nextId = 0
        /// Replies that came before their command's caller waited for them.
        var replies: [Int: Result<JSONValue, any Error>] = [:]
        var waiters: [Int: CheckedContinuation<JSONValue, any Error>] = [:]
        /// Commands whose caller gave up (cancelled, timed out): their replies are dropped.
        var abandoned: Set<Int> = []
        var closed: ProtocolError?
        /// What the page said on its console and the exceptions it did not catch, for messages.
        var console: [String] = []
    }

    private let state = Mutex(State())
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    private init(outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.outbound = outbound
    }

    /// Runs `body` with a connection that reads the browser's messages from `input` and writes
    /// commands to `output`; both descriptors are the connection's from now on, closed when it
    /// ends.
    static func with<Result: Sendable>(input: CInt, output: CInt, _ body: (DevToolsConnection) async throws -> Result) async throws -> Result {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .takingOwnershipOfDescriptors(input: input, output: output) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            // Not taken over: still ours to close.
            close(input)
            close(output)
            throw error
        }
        return try await channel.executeThenClose { inbound, outbound in
            let connection = DevToolsConnection(outbound: outbound)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await connection.read(inbound) }
                defer { group.cancelAll() }
                return try await body(connection)
            }
        }
    }

    /// The console lines and uncaught exceptions of the pages so far.
    var console: [String] { state.withLock { $0.console } }

    /// Sends `method` and returns its reply's `result`; throws the reply's `error`, or when no
    /// reply comes within `timeout` or the browser goes away.
    func send(_ method: String, _ parameters: JSONValue = [:], session: String? = nil, timeout: Duration = .seconds(30)) async throws -> JSONValue {
        let id = state.withLock { state in
            state.nextId += 1
            return state.nextId
        }
        var message: [String: JSONValue] = ["id": .number(Double(id)), "method": .string(method), "params": parameters]
        if let session { message["sessionId"] = .string(session) }
        var frame = ByteBuffer(bytes: try JSONEncoder().encode(JSONValue.object(message)))
        frame.writeInteger(UInt8(0))
        do {
            try await outbound.write(frame)
            guard let reply = try await within(timeout, { try await self.reply(to: id) }) else {
                throw ProtocolError(message: "no reply within \(timeout)")
            }
            return reply
        } catch let error as ProtocolError {
            throw ProtocolError(message: "\(method): \(error.message)")
        }
    }

    private func reply(to id: Int) async throws -> JSONValue {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONValue, any Error>) in
                let ready: Result<JSONValue, any Error>? = state.withLock { state in
                    if let reply = state.replies.removeValue(forKey: id) { return reply }
                    if state.abandoned.contains(id) { return .failure(CancellationError()) }
                    if let closed = state.closed { return .failure(closed) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                state.abandoned.insert(id)
                return state.waiters.removeValue(forKey: id)
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Reads messages until the browser closes its end or the connection's owner is done.
    private func read(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) async {
        var pending = ByteBuffer()
        var ending = "the browser closed its end of the pipe"
        do {
            for try await piece in inbound {
                pending.writeImmutableBuffer(piece)
                while let end = pending.readableBytesView.firstIndex(of: 0) {
                    let length = end - pending.readableBytesView.startIndex
                    guard let bytes = pending.readBytes(length: length) else { break }
                    pending.moveReaderIndex(forwardBy: 1)
                    receive(Data(bytes))
                }
                pending.discardReadBytes()
            }
        } catch {
            ending = "reading from the browser failed: \(error)"
        }
        let waiters = state.withLock { state in
            state.closed = ProtocolError(message: ending)
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        for waiter in waiters { waiter.resume(throwing: ProtocolError(message: ending)) }
    }

    private func receive(_ data: Data) {
        guard let message = try? JSONDecoder().decode(JSONValue.self, from: data) else { return }
        guard let id = message["id"]?.int else {
            if let line = Self.consoleLine(message) {
                state.withLock { $0.console.append(line) }
            }
            return
        }
        let reply: Result<JSONValue, any Error>
        if let error = message["error"] {
            reply = .failure(ProtocolError(message: error["message"]?.string ?? error.description))
        } else {
            reply = .success(message["result"] ?? [:])
        }
        let waiter = state.withLock { state -> CheckedContinuation<JSONValue, any Error>? in
            if state.abandoned.remove(id) != nil { return nil }
            if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
            state.replies[id] = reply
            return nil
        }
        waiter?.resume(with: reply)
    }

    /// A console call, an uncaught exception or a browser log entry, as one line.
    private static func consoleLine(_ event: JSONValue) -> String? {
        let parameters = event["params"] ?? [:]
        switch event["method"]?.string {
        case "Runtime.consoleAPICalled":
            guard case .array(let arguments) = parameters["args"] ?? .null else { return nil }
            let text = arguments.map { $0["value"]?.string ?? $0["description"]?.string ?? $0["value"]?.description ?? "" }
            return "console.\(parameters["type"]?.string ?? "log"): \(text.joined(separator: " "))"
        case "Runtime.exceptionThrown":
            let details = parameters["exceptionDetails"] ?? [:]
            return "uncaught: \(details["exception"]?["description"]?.string ?? details["text"]?.string ?? details.description)"
        case "Log.entryAdded":
            let entry = parameters["entry"] ?? [:]
            return "\(entry["level"]?.string ?? "log") \(entry["source"]?.string ?? ""): \(entry["text"]?.string ?? "") \(entry["url"]?.string ?? "")"
        default:
            return nil
        }
    }
}
