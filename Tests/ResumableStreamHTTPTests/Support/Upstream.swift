import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// An upstream HTTP service for the proxy source, on a real socket: `/status/500` fails, and
/// `/gated/{name}` streams what the test sends through the gate of that name, when it sends it.
struct Upstream: Sendable {
    let port: Int
    var origin: String { "http://127.0.0.1:\(port)" }
}

func withUpstream<Result>(_ body: (Upstream) async throws -> Result) async throws -> Result {
    let router = Router()
    router.get("status/500") { _, _ -> Response in
        Response(status: .internalServerError)
    }
    router.get("gated/{name}") { _, context -> Response in
        let name = try context.parameters.require("name")
        guard let gate = UpstreamGates.take(name) else { return Response(status: .notFound) }
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody { writer in
            for try await piece in gate.stream {
                try await writer.write(ByteBuffer(string: piece))
            }
            try await writer.finish(nil)
        })
    }
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        },
        logger: Logger(label: "upstream", factory: { _ in SwiftLogNoOpLogHandler() })
    )
    let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "upstream", factory: { _ in SwiftLogNoOpLogHandler() })))
    let task = Task { try await group.run() }
    var iterator = ports.makeAsyncIterator()
    let port = await iterator.next() ?? 0
    do {
        let result = try await body(Upstream(port: port))
        await group.triggerGracefulShutdown()
        _ = await task.result
        return result
    } catch {
        await group.triggerGracefulShutdown()
        _ = await task.result
        throw error
    }
}

/// Gates the upstream's `/gated/{name}` route reads.
enum UpstreamGates {
    private static let gates = Mutex<[String: Gate]>([:])

    static func make() -> Gate {
        let gate = Gate(name: "upstream-\(UInt64.random(in: 0...UInt64.max))")
        gates.withLock { $0[gate.name] = gate }
        return gate
    }

    static func take(_ name: String) -> Gate? {
        gates.withLock { $0.removeValue(forKey: name) }
    }
}
