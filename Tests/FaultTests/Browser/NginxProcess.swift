import Foundation
import TestSupport

/// nginx in front of the instances, as deployed: deploy/nginx.conf (round robin, no sticky
/// sessions, no buffering of responses) rendered for loopback by deploy/nginx-loopback-conf into a
/// folder of the test's own, with its pid, logs and temporary files there, in the foreground.
struct NginxProcess: Sendable {
    let process: ChildProcess
    let port: Int
    let directory: URL

    var base: String { "http://127.0.0.1:\(port)" }

    static func executable() throws -> String {
        try Programs.find("nginx", fallbacks: ["/usr/sbin/nginx"])
    }

    /// Starts it on a free port in front of `upstreams` and returns once `/healthz` answers
    /// through it.
    static func start(_ harness: FaultHarness, upstreams: [ServerProcess]) async throws -> NginxProcess {
        let executable = try Self.executable()
        let render = Programs.repository.appendingPathComponent("deploy/nginx-loopback-conf").path
        var failure = "not started"
        // The free port may be taken before nginx binds it: then it exits, and another is tried.
        for attempt in 1...5 {
            let port = try RedisProcess.freePort()
            let directory = harness.directory.appendingPathComponent("nginx-\(attempt)")
            let renderer = try harness.spawn(
                "deploy/nginx-loopback-conf", logName: "nginx-conf", executable: render,
                arguments: [directory.path, "127.0.0.1:\(port)"] + upstreams.map { "127.0.0.1:\($0.port)" }
            )
            let rendered = await renderer.termination(within: .seconds(10))
            guard rendered == .exited(0) else {
                renderer.killAndReap()
                throw StartFailed(message: "deploy/nginx-loopback-conf \(rendered?.description ?? "did not end within 10 s"): \(renderer.logTail(lines: 10))")
            }
            let process = try harness.spawn(
                "nginx :\(port)", logName: "nginx", executable: executable,
                arguments: ["-p", directory.path, "-c", directory.appendingPathComponent("nginx.conf").path,
                            "-e", directory.appendingPathComponent("error.log").path],
                leadsGroup: true
            )
            let nginx = NginxProcess(process: process, port: port, directory: directory)
            _ = try await poll(until: ContinuousClock.now + .seconds(10)) {
                guard process.isRunning else { return true }
                return await HTTP.send(.GET, "\(nginx.base)/healthz", timeout: .seconds(2)).status == 200
            }
            if process.isRunning { return nginx }
            failure = "nginx on port \(port) \(process.poll()?.description ?? "did not answer"): \(nginx.errorLogTail)"
            process.killAndReap()
        }
        throw StartFailed(message: failure)
    }

    /// The access log's lines (deploy/nginx-loopback-conf's format: the request, its status, the
    /// instance that served it and the Last-Event-ID it carried).
    var accessLog: [Substring] {
        let data = FileManager.default.contents(atPath: directory.appendingPathComponent("access.log").path) ?? Data()
        return String(decoding: data, as: UTF8.self).split(separator: "\n")
    }

    /// The instances' ports that served the requests whose line contains `pattern`; when nginx
    /// tried one and then the other, the last.
    func upstreamPorts(servingRequestsWith pattern: String) -> [Int] {
        accessLog.filter { $0.contains(pattern) }.compactMap { line in
            // upstream=127.0.0.1:A last_event_id="…", or upstream=127.0.0.1:A, 127.0.0.1:B …
            guard let start = line.range(of: "upstream="), let end = line.range(of: " last_event_id=") else { return nil }
            let last = line[start.upperBound..<end.lowerBound].split(separator: ",").last ?? ""
            return last.split(separator: ":").last.flatMap { Int($0) }
        }
    }

    var errorLogTail: String {
        let data = FileManager.default.contents(atPath: directory.appendingPathComponent("error.log").path) ?? Data()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").suffix(10).joined(separator: "\n")
    }

    struct StartFailed: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
