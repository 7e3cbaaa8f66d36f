/// Command-line options, parsed by hand so that the benchmark needs no dependency beyond the client.
struct Options: Sendable {
    enum Mode: String, Sendable {
        case publish
        case get
    }

    var mode: Mode
    /// `redis://[[user]:password@]host[:port][/db]`; `REDIS_URL` when not given.
    var url: String
    /// Measured commands (the warm-up comes on top).
    var count: Int
    var warmup: Int
    /// Concurrent caller tasks sharing the one client (`publish`; `get` always uses one).
    var callers: Int
    /// `publish`: instead of a fixed number of callers, the fewest (from `callers` up) that keep
    /// this many commands in flight on average when a batch goes out, found during the warm-up.
    var inFlight: Int?
    var channel: String
    var payload: String
    var key: String
    var value: String
    /// Where the caller tasks run: Swift's default global executor (what an application gets
    /// unless it opts in to something else), or NIO's event loops installed as the global executor.
    var executor: Executor

    enum Executor: String, Sendable {
        case `default`
        case nio
        case eventLoop = "event-loop"
    }

    static let usage = """
        usage: RedisBenchmark publish|get [options]

          --url URL          redis://[[user]:password@]host[:port][/db] (default: $REDIS_URL,
                             else redis://127.0.0.1:6379)
          -n, --count N      measured commands (default: 200000 for publish, 100000 for get)
          --warmup N         commands sent before measuring (default: 20000 for publish,
                             10000 for get)
          -c, --callers N    concurrent caller tasks on the one client, publish only (default: 16)
          --in-flight D      publish only: find the fewest callers (from -c up) whose batches go
                             out with D or more commands in flight on average (the client's
                             pipelineStatistics), probing with warm-up runs, then measure with them
          --channel NAME     PUBLISH channel (default: ch)
          --payload TEXT     PUBLISH message (default: payload)
          --key NAME         GET key (default: bench:key); set to --value before measuring
          --value TEXT       the key's value (default: xxx, redis-benchmark's 3-byte default)
          --executor E       default: caller tasks run on Swift's global concurrency pool, as in
                             an application that does nothing special (the measurement that
                             counts); nio: NIO's event loops are installed as the global executor
                             first (NIOSingletons.unsafeTryInstall...), so callers resume on the
                             connection's own thread: a diagnostic of what the thread hops cost;
                             event-loop: each caller is a task that prefers the client's task
                             executor (Task(executorPreference: client.taskExecutor)), so it runs
                             on the connection's event loop: the way an application asks for the
                             lowest latency without changing the global executor

        publish: N PUBLISH commands spread over C caller tasks, each awaiting its reply before
                 sending the next, so that at most C commands are in flight; prints ops/s.
        get:     one caller, N sequential GETs; prints mean, p50 and p99 latency (µs) and ops/s.

        Output: key=value lines for scripts, then one line for people.
        """

    static func parse(_ arguments: [String], redisURL: String?) throws(UsageError) -> Options {
        var mode: Mode?
        var url = redisURL.flatMap { $0.isEmpty ? nil : $0 } ?? "redis://127.0.0.1:6379"
        var count: Int?
        var warmup: Int?
        var callers = 16
        var inFlight: Int?
        var channel = "ch"
        var payload = "payload"
        var key = "bench:key"
        var value = "xxx"
        var executor = Executor.default

        var rest = arguments[...]
        func next(of flag: String) throws(UsageError) -> String {
            guard let next = rest.popFirst() else { throw UsageError(message: "\(flag) needs a value") }
            return next
        }
        func number(of flag: String, minimum: Int) throws(UsageError) -> Int {
            let text = try next(of: flag)
            guard let number = Int(text), number >= minimum else {
                throw UsageError(message: "\(flag) takes an integer of at least \(minimum), not '\(text)'")
            }
            return number
        }

        while let argument = rest.popFirst() {
            switch argument {
            case "-h", "--help":
                throw UsageError(message: nil)
            case "--url": url = try next(of: argument)
            case "-n", "--count": count = try number(of: argument, minimum: 1)
            case "--warmup": warmup = try number(of: argument, minimum: 0)
            case "-c", "--callers": callers = try number(of: argument, minimum: 1)
            case "--in-flight": inFlight = try number(of: argument, minimum: 1)
            case "--channel": channel = try next(of: argument)
            case "--payload": payload = try next(of: argument)
            case "--key": key = try next(of: argument)
            case "--value": value = try next(of: argument)
            case "--executor":
                let text = try next(of: argument)
                guard let parsed = Executor(rawValue: text) else {
                    throw UsageError(message: "--executor takes default or nio, not '\(text)'")
                }
                executor = parsed
            default:
                if mode == nil, let parsed = Mode(rawValue: argument) {
                    mode = parsed
                } else {
                    throw UsageError(message: "unexpected argument '\(argument)'")
                }
            }
        }
        guard let mode else { throw UsageError(message: "say which benchmark: publish or get") }
        return Options(
            mode: mode,
            url: url,
            count: count ?? (mode == .publish ? 200_000 : 100_000),
            warmup: warmup ?? (mode == .publish ? 20_000 : 10_000),
            callers: mode == .publish ? callers : 1,
            inFlight: mode == .publish ? inFlight : nil,
            channel: channel,
            payload: payload,
            key: key,
            value: value,
            executor: executor
        )
    }
}

struct UsageError: Error {
    /// `nil` for `--help`: print the usage and exit successfully.
    var message: String?
}
