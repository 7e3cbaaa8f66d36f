import Foundation
import TestSupport
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A redis-server of one test's own on 127.0.0.1, with no persistence: paused, killed and started
/// again on the same port, empty, as the faults require.
final class RedisProcess: Sendable {
    let port: Int
    private let logPath: String
    private let process: Mutex<ChildProcess>
    private let onStart: @Sendable (ChildProcess) -> Void

    var url: String { "redis://127.0.0.1:\(port)" }

    private init(port: Int, logPath: String, process: ChildProcess, onStart: @escaping @Sendable (ChildProcess) -> Void) {
        self.port = port
        self.logPath = logPath
        self.process = Mutex(process)
        self.onStart = onStart
    }

    /// Starts one on a free port. `onStart` sees each process started (the first and each restart),
    /// so that the test can stop them all whatever happens.
    static func start(logPath: String, onStart: @escaping @Sendable (ChildProcess) -> Void) async throws -> RedisProcess {
        var lastError: (any Error)?
        // A free port can be taken between the look-up and redis-server's bind: then it exits, and
        // another port is tried.
        for _ in 0..<10 {
            let port = try freePort()
            do {
                let process = try await launch(port: port, logPath: logPath, onStart: onStart)
                return RedisProcess(port: port, logPath: logPath, process: process, onStart: onStart)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? StartFailed(message: "no free port")
    }

    /// SIGSTOP: the server holds its connections and answers nothing until ``resume()``.
    func pause() { process.withLock { $0.signal(SIGSTOP) } }

    func resume() { process.withLock { $0.signal(SIGCONT) } }

    /// SIGKILL: every connection drops and, without persistence, every key is gone.
    func kill() { process.withLock { $0.killAndReap() } }

    /// A new, empty redis-server on the same port.
    func restart() async throws {
        let process = try await Self.launch(port: port, logPath: logPath, onStart: onStart)
        self.process.withLock { $0 = process }
    }

    private static func launch(port: Int, logPath: String, onStart: @Sendable (ChildProcess) -> Void) async throws -> ChildProcess {
        let process = try ChildProcess.spawn(
            name: "redis-server :\(port)",
            executable: try executable(),
            arguments: [
                "--bind", "127.0.0.1", "--port", "\(port)", "--save", "", "--appendonly", "no",
                "--logfile", "", "--daemonize", "no",
            ],
            logPath: logPath
        )
        onStart(process)
        // Ready once it answers PING; gone if the port was taken. Polled: redis-server says it
        // listens only in its log.
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let termination = process.poll() {
                throw StartFailed(message: "redis-server on port \(port) \(termination): \(process.logTail(lines: 5))")
            }
            if let reply = try? await TCPConnection.exchange(port: port, "PING\r\n", until: "\r\n"), reply.hasPrefix("+PONG") {
                return process
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        process.killAndReap()
        throw StartFailed(message: "redis-server on port \(port) did not answer PING within 10 s")
    }

    private static func executable() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw StartFailed(message: "redis-server is not on PATH: run .ci/run, or apt-get install redis-server")
    }

    /// A port of 127.0.0.1 that nothing listens on now: the kernel's choice for port 0.
    static func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw StartFailed(message: "socket: \(String(cString: strerror(errno)))") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(socket, address, length) == 0 && getsockname(socket, address, &length) == 0
            }
        }
        guard bound else { throw StartFailed(message: "bind: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    struct StartFailed: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}

extension RedisProcess {
    /// A reply of Redis's protocol, as far as the tests read it.
    indirect enum Reply: Equatable, CustomStringConvertible {
        case status(String)
        case error(String)
        case integer(Int)
        case bulk(String?)
        case array([Reply])

        var description: String {
            switch self {
            case .status(let text): "+\(text)"
            case .error(let text): "-\(text)"
            case .integer(let value): "\(value)"
            case .bulk(let text): text.map { $0.debugDescription } ?? "(nil)"
            case .array(let elements): "[\(elements.map(\.description).joined(separator: ", "))]"
            }
        }
    }

    /// Sends one command on a connection of its own and returns its reply: for a test that looks
    /// at what the server keeps in Redis.
    func command(_ arguments: String...) async throws -> Reply {
        var request = "*\(arguments.count)\r\n"
        for argument in arguments { request += "$\(argument.utf8.count)\r\n\(argument)\r\n" }
        let connection = try await TCPConnection.connect(port: port)
        return try await connection.channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var bytes: [UInt8] = []
            for try await piece in inbound {
                bytes += piece.readableBytesView
                var index = 0
                if let reply = Self.parse(bytes, at: &index) { return reply }
            }
            throw StartFailed(message: "redis-server closed the connection before it replied to \(arguments.first ?? "")")
        }
    }

    /// The reply that starts at `index` (which moves past it), `nil` while it is not whole.
    private static func parse(_ bytes: [UInt8], at index: inout Int) -> Reply? {
        guard index < bytes.count, let lineEnd = bytes[index...].firstRange(of: Array("\r\n".utf8)) else { return nil }
        let kind = bytes[index]
        let line = String(decoding: bytes[(index + 1)..<lineEnd.lowerBound], as: UTF8.self)
        var next = lineEnd.upperBound
        let reply: Reply
        switch kind {
        case UInt8(ascii: "+"): reply = .status(line)
        case UInt8(ascii: "-"): reply = .error(line)
        case UInt8(ascii: ":"): reply = .integer(Int(line) ?? 0)
        case UInt8(ascii: "$"):
            let length = Int(line) ?? -1
            if length < 0 {
                reply = .bulk(nil)
            } else {
                guard bytes.count >= next + length + 2 else { return nil }
                reply = .bulk(String(decoding: bytes[next..<(next + length)], as: UTF8.self))
                next += length + 2
            }
        case UInt8(ascii: "*"):
            var elements: [Reply] = []
            for _ in 0..<max(Int(line) ?? 0, 0) {
                guard let element = parse(bytes, at: &next) else { return nil }
                elements.append(element)
            }
            reply = .array(elements)
        default:
            reply = .error("unreadable reply: \(line)")
        }
        index = next
        return reply
    }
}
