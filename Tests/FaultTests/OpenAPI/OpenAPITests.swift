import Foundation
import Testing

extension FaultTests {
    /// The server against its own OpenAPI document (`docs/openapi.yaml`, which the server embeds and
    /// serves at `/openapi.yaml`): schemathesis reads the document from the running server and
    /// fuzzes every operation, then chains them by the document's links (create, then read, HEAD,
    /// status and cancel of the same id). Any 5xx, any status, header, content type or body that
    /// the document does not describe, and any request the document calls invalid that the server
    /// accepts, fails the test, with schemathesis's report.
    ///
    /// Each test fuzzes twice: with a fixed seed, which reproduces, and with a seed of its own,
    /// which explores and is printed when it fails. `SCHEMATHESIS` is the schemathesis executable
    /// (`scripts/test` installs the version `Tests/requirements.txt` pins and sets it).
    @Suite struct OpenAPITests {
        @Test func theServerOnItsEmbeddedBrokerAnswersAsItsDocumentSays() async throws {
            try await FaultHarness.run { h in
                let server = try await h.startServer("embedded", redis: nil, options: Fuzzing.options, extraArguments: Fuzzing.arguments)
                try await Fuzzing.run(h, against: server, flags: Fuzzing.flags(Fuzzing.options), durable: false)
            }
        }

        @Test func theServerOnRedisWithDurableStreamsAnswersAsItsDocumentSays() async throws {
            try await FaultHarness.run { h in
                let redis = try await h.startRedis()
                var options = Fuzzing.options
                options.durability = "redis"
                options.retentionSeconds = 60
                let server = try await h.startServer("durable", redis: redis, options: options, extraArguments: Fuzzing.arguments)
                try await Fuzzing.run(h, against: server, flags: "--redis-url \(redis.url) " + Fuzzing.flags(options), durable: true)
            }
        }
    }
}

/// One schemathesis run after another against one server.
enum Fuzzing {
    static let fixedSeed = 20_261_201
    /// Test cases per operation and phase: 15 to 25 s a run.
    static let maxExamples = 25
    /// A request's bound, and an event stream's whole (schemathesis reads one until it ends, until
    /// 20 events, or until this passes): demo streams may tick once a minute for a million ticks.
    static let requestTimeoutSeconds = 2
    /// What one run may take before it is stopped and the test fails: two runs and a server's
    /// start stay within the suite's time limit.
    static let runBound = Duration.seconds(55)

    /// The fault suite's short timings, and an ingest whose body broke off waits 2 s.
    static var options: ServerOptions {
        var options = ServerOptions()
        options.ingestReattachSeconds = 2
        return options
    }

    /// Small buffers: a fuzzed demo stream of a million 64 KiB tokens fails at 1 MiB (with its
    /// `end` event) instead of filling the machine's memory.
    static let arguments = ["--stream-buffer-limit", "1048576", "--process-buffer-limit", "67108864"]

    /// The server's flags as a failure prints them, to start it again by hand.
    static func flags(_ options: ServerOptions) -> String {
        (options.flags.flatMap { ["--\($0.name)", $0.value] } + arguments).joined(separator: " ")
    }

    /// `flags`: the server's, for the failure message.
    static func run(_ h: FaultHarness, against server: ServerProcess, flags: String, durable: Bool) async throws {
        let executable = try h.require(
            ProcessInfo.processInfo.environment["SCHEMATHESIS"].flatMap { $0.isEmpty ? nil : $0 },
            "SCHEMATHESIS is not set: run the tests with scripts/test, which installs schemathesis (Tests/requirements.txt) and sets it"
        )
        _ = try h.require(
            FileManager.default.isExecutableFile(atPath: executable) ? executable : nil,
            "SCHEMATHESIS=\(executable) is not an executable file: run the tests with scripts/test, which installs it"
        )
        try await checkServedDocument(h, server)

        let configuration = h.directory.appendingPathComponent("schemathesis.toml")
        try Data(configurationText(durable: durable).utf8).write(to: configuration)
        for (seed, kind) in [(fixedSeed, "fixed"), (Int(UInt32.random(in: 1...UInt32.max)), "generated")] {
            let arguments = [
                "--config-file", configuration.path,
                "run", "\(server.base)/openapi.yaml", "--url", server.base,
                "--checks", "all",
                // DELETE cancels a stream; it does not remove it: the id stays taken and its text
                // readable (HEAD says failed, cancelled), which this check takes for a resource
                // still there after its deletion.
                "--exclude-checks", "use_after_free",
                "--phases", "examples,coverage,fuzzing,stateful",
                "--max-examples", "\(maxExamples)",
                "--request-timeout", "\(requestTimeoutSeconds)",
                "--seed", "\(seed)",
                "--generation-database", "none",
                "--no-color",
            ]
            // In the test's folder, where schemathesis and Hypothesis keep their caches.
            let process = try h.spawn(
                "schemathesis (seed \(seed))", logName: "schemathesis-\(seed)",
                executable: "/usr/bin/env", arguments: ["-C", h.directory.path, executable] + arguments
            )
            let termination = await process.termination(within: runBound)
            if termination == nil { process.killAndReap() }
            guard termination != .exited(0) else { continue }
            let outcome = termination.map { "\($0)" } ?? "was stopped after \(runBound.seconds) s"
            h.fail("""
                schemathesis with the \(kind) seed \(seed) \(outcome) against the server (\(durable ? "Redis, durable streams" : "embedded broker")).
                To reproduce: start resumable-stream-server \(flags) --port \(server.port) and run
                \(executable) \(arguments.joined(separator: " "))
                with \(configuration.lastPathComponent):
                \(configurationText(durable: durable))
                schemathesis's report:
                \(process.log)
                """)
        }
    }

    /// The document the server serves is the one in the repository, byte for byte: the build
    /// embedded it (Public/openapi.yaml is a link to docs/openapi.yaml) and the binary is current.
    static func checkServedDocument(_ h: FaultHarness, _ server: ServerProcess) async throws {
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let document = try String(contentsOf: package.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        let served = await HTTP.send(.GET, "\(server.base)/openapi.yaml", timeout: .seconds(5))
        h.check(served.status == 200 && served.headers.first(name: "Content-Type")?.hasPrefix("application/yaml") == true,
                "GET /openapi.yaml: expected 200 application/yaml, got \(served)")
        h.check(served.body == document, "GET /openapi.yaml does not serve docs/openapi.yaml as it is now: rebuild the server (\(served.body.utf8.count) bytes served, \(document.utf8.count) in the file)")
    }

    /// Statuses that a request the document calls valid may get besides schemathesis's defaults
    /// (2xx, 3xx, 401, 403, 404, 409, 429, 5xx): refusals that depend on a stream's state or on the
    /// server's mode, not on the request. A stream that has finished refuses an offset past its end
    /// (416) and, once its text is no longer kept, reads and cancels (422 "Stream is already
    /// done", as the reference answers); `Stream-Offset` needs durable streams (400 not_durable).
    ///
    /// `format` is fixed to `sse`: a raw response whose stream fails or is cancelled breaks off
    /// (its chunked body never ends), on purpose, so that no client takes it for whole. A fuzzer
    /// can only see that as a network error, and no document can describe it.
    static func configurationText(durable: Bool) -> String {
        let defaults = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
        func accepted(_ more: [String]) -> String {
            (defaults + more).map { "\"\($0)\"" }.joined(separator: ", ")
        }
        return """
            [parameters]
            "query.format" = "sse"

            [[operations]]
            include-operation-id = "readStream"
            checks.positive_data_acceptance.expected-statuses = [\(accepted(["416", "422"]))]

            [[operations]]
            include-operation-id = "cancelStream"
            checks.positive_data_acceptance.expected-statuses = [\(accepted(["422"]))]

            [[operations]]
            include-operation-id = "ingestStream"
            checks.positive_data_acceptance.expected-statuses = [\(accepted(durable ? [] : ["400"]))]

            """
    }
}
