import AsyncHTTPClient
import Foundation
import TestSupport
import NIOHTTP1
import Synchronization
import Testing

/// One fault test's world: a folder for its processes' logs, the processes themselves (each stopped
/// with SIGKILL when the test ends, whatever happens), and its failures. When the test fails, the
/// tail of every process's log is printed after it.
final class FaultHarness: Sendable {
    let directory: URL
    /// Redis keys and channels of this test's instances.
    let keyPrefix = "fault-\(UUID().uuidString.prefix(8).lowercased())"

    private struct State {
        var processes: [ChildProcess] = []
        var failed = false
        var knownFlags: Set<String>?
        var reportedFlags: Set<String> = []
        var logs = 0
    }

    private let state = Mutex(State())
    /// Work the test runs beside itself (a reader of a response, a connection's owner): owned by
    /// ``run(_:)``, which cancels what is left of it when the test ends.
    private let jobs: AsyncStream<@Sendable () async -> Void>
    private let submitJob: AsyncStream<@Sendable () async -> Void>.Continuation

    private init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fault-tests-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        (jobs, submitJob) = AsyncStream.makeStream()
    }

    /// Runs `body` with a harness, then stops its processes and its background work, and removes
    /// its folder.
    static func run<Result: Sendable>(_ body: (FaultHarness) async throws -> Result) async throws -> Result {
        let harness = try FaultHarness()
        defer { harness.finish() }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await withDiscardingTaskGroup { jobs in
                    for await job in harness.jobs {
                        jobs.addTask { await job() }
                    }
                }
            }
            defer {
                harness.submitJob.finish()
                group.cancelAll()
            }
            do {
                return try await body(harness)
            } catch {
                harness.state.withLock { $0.failed = true }
                throw error
            }
        }
    }

    /// Runs `job` beside the test, until it returns or the test ends.
    func background(_ job: @escaping @Sendable () async -> Void) {
        submitJob.yield(job)
    }

    private func finish() {
        let (processes, failed) = state.withLock { ($0.processes, $0.failed) }
        // The servers before their redis-server, so that their logs end with the test, not with
        // the loss of Redis.
        for process in processes.reversed() { process.killAndReap() }
        if failed {
            for process in processes {
                print("──── the end of \(process.name)'s log (pid \(process.pid), \(process.poll()?.description ?? "running")):\n\(process.logTail())")
            }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: - Processes

    func startRedis() async throws -> RedisProcess {
        try await RedisProcess.start(logPath: newLogPath("redis")) { [self] process in register(process) }
    }

    /// An instance of the server on `redis` (none: the embedded broker), with this test's key
    /// prefix. A flag the executable does not know yet fails the test, and is left out so that the
    /// rest of the test still shows what works.
    /// `redisURL` and `extraArguments` are for a Redis that is not a ``RedisProcess`` (one that
    /// speaks TLS).
    func startServer(
        _ name: String,
        redis: RedisProcess?,
        redisURL: String? = nil,
        options: ServerOptions = ServerOptions(),
        extraArguments: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> ServerProcess {
        let executable = try ServerExecutable.path()
        let known = try await knownFlags(executable: executable)
        var arguments = ["--host", "127.0.0.1", "--port", "0", "--key-prefix", keyPrefix, "--log-level", "info"] + extraArguments
        if let url = redisURL ?? redis?.url { arguments += ["--redis-url", url] }
        for (flag, value) in options.flags {
            guard known.contains(flag) else {
                let first = state.withLock { $0.reportedFlags.insert(flag).inserted }
                if first { fail("the server has no --\(flag) yet (its --help does not list it)", sourceLocation: sourceLocation) }
                continue
            }
            arguments += ["--\(flag)", value]
        }
        return try await ServerProcess.start(
            name: "instance \(name)", executable: executable, arguments: arguments, logPath: newLogPath("server-\(name)")
        ) { process in register(process) }
    }

    /// Any other process of the test's own (nginx, Chromium, a one-shot script), logged to a
    /// file named after `logName` and killed with the others when the test ends.
    func spawn(_ name: String, logName: String, executable: String, arguments: [String], descriptors: [CInt] = [], leadsGroup: Bool = false, environment: [String] = []) throws -> ChildProcess {
        let process = try ChildProcess.spawn(
            name: name, executable: executable, arguments: arguments, logPath: newLogPath(logName), descriptors: descriptors, leadsGroup: leadsGroup, environment: environment
        )
        register(process)
        return process
    }

    private func knownFlags(executable: String) async throws -> Set<String> {
        if let known = state.withLock({ $0.knownFlags }) { return known }
        let known = try await ServerExecutable.knownFlags(executable: executable, logPath: newLogPath("help"))
        state.withLock { $0.knownFlags = known }
        return known
    }

    private func register(_ process: ChildProcess) {
        state.withLock { $0.processes.append(process) }
    }

    private func newLogPath(_ name: String) -> String {
        let index = state.withLock { state in
            state.logs += 1
            return state.logs
        }
        return directory.appendingPathComponent("\(index)-\(name).log").path
    }

    // MARK: - Checks

    /// Records an issue when `condition` is false.
    func check(_ condition: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) {
        if !condition { fail(message(), sourceLocation: sourceLocation) }
    }

    func fail(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        state.withLock { $0.failed = true }
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
    }

    /// `value`, or an issue and a thrown error when there is none: for what the rest of a test
    /// cannot do without.
    func require<Value>(_ value: Value?, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Value {
        guard let value else {
            let message = message()
            fail(message, sourceLocation: sourceLocation)
            throw Stop(message: message)
        }
        return value
    }

    /// A documented refusal: `status`, and (unless it is a HEAD) a JSON body whose `error` is
    /// `code`, answered within `bound`.
    func checkRefusal(_ answer: Answer, _ what: String, status: Int, code: String?, within bound: Duration, sourceLocation: SourceLocation = #_sourceLocation) {
        check(answer.status == status, "\(what): expected \(status), got \(answer)", sourceLocation: sourceLocation)
        if let code {
            check(answer.errorCode == code, "\(what): expected a JSON body with \"error\":\"\(code)\", got \(answer)", sourceLocation: sourceLocation)
        }
        check(answer.elapsed <= bound, "\(what): answered after \(answer.elapsed.seconds) s, more than \(bound.seconds) s: \(answer)", sourceLocation: sourceLocation)
    }

    /// The whole text of `demo`, each chunk once, in order, then the `completed` end event.
    func checkComplete(_ read: StreamRead, _ demo: Demo, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let expected = demo.text
        if read.text != expected {
            let common = zip(read.text, expected).prefix { $0 == $1 }.count
            fail("\(what): the text differs from the stream's after \(common) characters (\(read)); got …\(read.text.dropFirst(max(common - 20, 0)).prefix(80)), expected …\(expected.dropFirst(max(common - 20, 0)).prefix(80))", sourceLocation: sourceLocation)
        }
        check(zip(read.ids, read.ids.dropFirst()).allSatisfy { $0 < $1 }, "\(what): event ids not increasing: \(read.ids)", sourceLocation: sourceLocation)
        check(read.lastId == expected.utf16.count, "\(what): the last id is \(read.lastId), not \(expected.utf16.count)", sourceLocation: sourceLocation)
        check(read.end == EndEvent(status: "completed", offset: expected.utf16.count, error: nil), "\(what): expected end completed at \(expected.utf16.count), got \(read)", sourceLocation: sourceLocation)
    }

    struct Stop: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}

extension FaultHarness {
    /// Opens a stream response (a `POST` that creates, a `GET` that follows): a `200`, or an issue
    /// and a thrown error.
    func openStream(_ method: HTTPMethod, _ url: String, body: String? = nil, headers: [(String, String)] = [], _ what: String, timeout: Duration = .seconds(60), sourceLocation: SourceLocation = #_sourceLocation) async throws -> HTTPClientResponse {
        let start = ContinuousClock.now
        let response: HTTPClientResponse
        do {
            response = try await HTTP.open(method, url, body: body, headers: headers, timeout: timeout)
        } catch {
            fail("\(what): no answer after \((ContinuousClock.now - start).seconds) s: \(error)", sourceLocation: sourceLocation)
            throw error
        }
        guard response.status == .ok else {
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { String(buffer: $0) } ?? ""
            let message = "\(what): expected 200, got \(response.status.code): \(body)"
            fail(message, sourceLocation: sourceLocation)
            throw Stop(message: message)
        }
        return response
    }

    /// Polls `probe` until it says yes or `deadline` passes: for state only requests can see.
    /// Returns how long after `start` it held; records an issue with the last answer otherwise.
    @discardableResult
    func waitFor(
        _ what: String,
        since start: ContinuousClock.Instant,
        within bound: Duration,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ probe: () async -> (holds: Bool, seen: String)
    ) async -> Duration? {
        let deadline = start + bound
        var seen = "nothing"
        repeat {
            let result = await probe()
            if result.holds { return ContinuousClock.now - start }
            seen = result.seen
            try? await Task.sleep(for: .milliseconds(25))
        } while ContinuousClock.now < deadline
        fail("\(what): not within \(bound.seconds) s; last seen: \(seen)", sourceLocation: sourceLocation)
        return nil
    }
}
