#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix
import Redis

/// Measures the client against a live Redis: pipelined PUBLISH throughput with many callers, and
/// the round-trip latency of one GET with one caller. `scripts/benchmark` runs it next to
/// `redis-benchmark`; see docs/benchmarks.md.
@main
enum Benchmark {
    static func main() async {
        let options: Options
        do {
            options = try Options.parse(Array(CommandLine.arguments.dropFirst()), redisURL: environmentVariable("REDIS_URL"))
        } catch {
            if let message = error.message {
                printError("RedisBenchmark: \(message)\n\n\(Options.usage)")
                exit(2)
            }
            print(Options.usage)
            exit(0)
        }

        if options.executor == .nio {
            // Must happen before any other task is enqueued; main() runs on the main thread.
            guard NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() else {
                printError("RedisBenchmark: could not install NIO's event loops as the global executor")
                exit(1)
            }
        }

        do {
            let configuration = try RedisConfiguration(url: options.url)
            let client = try await RedisClient.connect(configuration: configuration)
            do {
                switch options.mode {
                case .publish: try await publish(client, options)
                case .get: try await get(client, options)
                }
            } catch {
                await client.close()
                throw error
            }
            await client.close()
        } catch {
            printError("RedisBenchmark: \(error)")
            exit(1)
        }
    }

    // MARK: - PUBLISH throughput

    static func publish(_ client: RedisClient, _ options: Options) async throws {
        let payload = RedisArgument.string(options.payload)
        var callers = options.callers
        // With `--executor event-loop` every caller task prefers the connection's event loop.
        let executor: (any TaskExecutor)? = options.executor == .eventLoop ? client.taskExecutor : nil
        if let target = options.inFlight {
            // Probes with warm-up-sized runs, adding callers until the pipeline is as deep as asked.
            let probe = max(options.warmup, 10_000)
            while true {
                let before = client.pipelineStatistics
                try await publish(client, count: probe, callers: callers, channel: options.channel, payload: payload, executor: executor)
                let depth = client.pipelineStatistics.since(before).meanInFlight
                if depth >= Double(target) || callers >= 64 * target { break }
                callers = max(callers + 1, Int((Double(callers) * Double(target) / max(depth, 1)).rounded(.up)))
            }
        }
        // The warm-up runs the same way as the measurement, so that the connection's buffers, the
        // allocator and the caller tasks' executors have all settled before the clock starts.
        if options.warmup > 0 {
            try await publish(client, count: options.warmup, callers: callers, channel: options.channel, payload: payload, executor: executor)
        }
        let before = client.pipelineStatistics
        let clock = ContinuousClock()
        let start = clock.now
        try await publish(client, count: options.count, callers: callers, channel: options.channel, payload: payload, executor: executor)
        let elapsed = clock.now - start
        let pipeline = client.pipelineStatistics.since(before)

        let seconds = elapsed.seconds
        let opsPerSecond = Double(options.count) / seconds
        print("mode=publish")
        print("executor=\(options.executor.rawValue)")
        print("publish_commands=\(options.count)")
        print("publish_callers=\(callers)")
        print("publish_mean_batch=\(format(pipeline.meanBatchSize, decimals: 2))")
        print("publish_mean_in_flight=\(format(pipeline.meanInFlight, decimals: 2))")
        print("publish_seconds=\(format(seconds, decimals: 6))")
        print("publish_ops_per_sec=\(format(opsPerSecond, decimals: 1))")
        print(
            "PUBLISH \(options.channel) \"\(options.payload)\": \(options.count) commands, "
                + "\(callers) concurrent callers on one connection (\(options.executor.rawValue) executor), "
                + "\(format(pipeline.meanBatchSize, decimals: 1)) commands per write, "
                + "\(format(pipeline.meanInFlight, decimals: 1)) in flight after each write, "
                + "\(format(seconds, decimals: 3)) s, \(format(opsPerSecond, decimals: 0)) ops/s"
        )
    }

    /// `count` PUBLISH commands over `callers` tasks; each task awaits every reply before sending
    /// its next command, so at most `callers` commands are in flight.
    private static func publish(
        _ client: RedisClient,
        count: Int,
        callers: Int,
        channel: String,
        payload: RedisArgument,
        executor: (any TaskExecutor)?
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                let share = count / callers + (caller < count % callers ? 1 : 0)
                guard share > 0 else { continue }
                group.addTask(executorPreference: executor) {
                    for _ in 0..<share {
                        try await client.publish(payload, to: channel)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    // MARK: - GET latency

    static func get(_ client: RedisClient, _ options: Options) async throws {
        try await client.set(options.key, to: .string(options.value))
        for _ in 0..<options.warmup {
            _ = try await client.get(options.key)
        }
        guard let stored = try await client.get(options.key), stored.readableBytes == options.value.utf8.count else {
            throw BenchmarkError(message: "GET \(options.key) did not return the value just set")
        }

        var (samples, elapsed) = options.executor == .eventLoop
            ? try await Task(executorPreference: client.taskExecutor) {
                try await timeGets(client, key: options.key, count: options.count)
            }.value
            : try await timeGets(client, key: options.key, count: options.count)

        samples.sort()
        let seconds = elapsed.seconds
        let meanMicroseconds = seconds * 1_000_000 / Double(options.count)
        let p50 = Double(percentile(samples, 50)) / 1000
        let p99 = Double(percentile(samples, 99)) / 1000
        let opsPerSecond = Double(options.count) / seconds
        print("mode=get")
        print("executor=\(options.executor.rawValue)")
        print("get_commands=\(options.count)")
        print("get_seconds=\(format(seconds, decimals: 6))")
        print("get_mean_us=\(format(meanMicroseconds, decimals: 2))")
        print("get_p50_us=\(format(p50, decimals: 2))")
        print("get_p99_us=\(format(p99, decimals: 2))")
        print("get_ops_per_sec=\(format(opsPerSecond, decimals: 1))")
        print(
            "GET \(options.key): \(options.count) sequential calls, one caller (\(options.executor.rawValue) executor), "
                + "mean \(format(meanMicroseconds, decimals: 1)) µs, p50 \(format(p50, decimals: 1)) µs, "
                + "p99 \(format(p99, decimals: 1)) µs, \(format(opsPerSecond, decimals: 0)) ops/s"
        )
    }

    /// Times `count` sequential GETs, on the caller's executor.
    nonisolated(nonsending) static func timeGets(
        _ client: RedisClient,
        key: String,
        count: Int
    ) async throws -> (samples: [Int64], elapsed: Duration) {
        let clock = ContinuousClock()
        var samples = [Int64](repeating: 0, count: count)
        let start = clock.now
        var before = start
        for index in 0..<count {
            _ = try await client.get(key)
            let after = clock.now
            samples[index] = (after - before).nanoseconds
            before = after
        }
        return (samples, before - start)
    }

    /// The nearest-rank percentile of sorted samples.
    private static func percentile(_ sorted: [Int64], _ percent: Int) -> Int64 {
        let rank = (sorted.count * percent + 99) / 100
        return sorted[max(0, min(sorted.count - 1, rank - 1))]
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// `value` with a fixed number of decimals, without Foundation.
func format(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int(scaled / scale)
    let fraction = Int(scaled - Double(whole) * scale)
    let sign = value < 0 && scaled != 0 ? "-" : ""
    guard decimals > 0 else { return "\(sign)\(whole)" }
    let digits = String(fraction)
    return "\(sign)\(whole).\(String(repeating: "0", count: decimals - digits.count))\(digits)"
}

/// Writes a line to standard error (the `stderr` global is not concurrency-safe in Swift 6).
func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { bytes in
        var rest = UnsafeRawBufferPointer(bytes)
        while !rest.isEmpty {
            let written = write(2, rest.baseAddress, rest.count)
            guard written > 0 else { return }
            rest = UnsafeRawBufferPointer(rebasing: rest[written...])
        }
    }
}

func environmentVariable(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}
