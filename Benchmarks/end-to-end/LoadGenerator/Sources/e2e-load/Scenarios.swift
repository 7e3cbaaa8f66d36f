import Foundation
import NIOCore

struct Options {
    private var values: [String: String] = [:]

    init(_ arguments: ArraySlice<String>) {
        var key: String?
        for argument in arguments {
            if argument.hasPrefix("--") {
                if let key { values[key] = "true" }
                key = String(argument.dropFirst(2))
            } else if let k = key {
                values[k] = argument
                key = nil
            }
        }
        if let key { values[key] = "true" }
    }

    func string(_ key: String, _ fallback: String? = nil) -> String {
        guard let value = values[key] ?? fallback else { fatalError("--\(key) is required") }
        return value
    }

    func int(_ key: String, _ fallback: Int) -> Int { values[key].flatMap { Int($0) } ?? fallback }
    func flag(_ key: String) -> Bool { values[key] == "true" }

    var system: SystemKind { SystemKind(rawValue: string("system"))! }
    func addresses(_ key: String) -> [Address] { string(key).split(separator: ",").map { Address(String($0)) } }
    /// `--wrong` expects text that starts one token later: every check must then fail.
    func text(size: Int, count: Int) -> TokenText { TokenText(size: size, count: count, first: flag("wrong") ? 2 : 1) }
}

func ms(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1e6 }
func ms(_ a: UInt64, _ b: UInt64) -> Double { b >= a ? Double(b - a) / 1e6 : 0 }

/// Until `GET /streams/{id}/status` answers 200 on the instance (the stream is known there).
func waitLive(_ address: Address, id: String) async -> Bool {
    for _ in 0..<200 {
        let (status, _) = await fetch(address, request("GET", "/streams/\(id)/status"))
        if status == 200 { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return false
}

/// Opens a follower per index on the instances round robin, and sends each its request.
func openFollowers(_ count: Int, on addresses: [Address], make: (Int) -> Follower, errors: Errors, receiveBuffer: Int? = nil, autoRead: Bool = true, start: Bool = true) async -> [(Follower, HTTPConnection?)] {
    let followers = (0..<count).map(make)
    let connections = await connectMany(count) { index in
        try await connect(addresses[index % addresses.count], consumer: followers[index], receiveBuffer: receiveBuffer, autoRead: autoRead)
    }
    var result: [(Follower, HTTPConnection?)] = []
    for (follower, connection) in zip(followers, connections) {
        if let connection {
            if start { follower.start(on: connection) }
        } else {
            errors.add("connect", "a connection failed")
            follower.progress?.followerFailed()
            follower.ready?.countDown()
            follower.done?.countDown()
        }
        result.append((follower, connection))
    }
    return result
}

/// Fan-out: one stream fed on the first instance, followers on the others. In step, each token is
/// sent once every follower has the last one; free-running, as fast as the publisher allows.
func fanout(_ o: Options) async -> [String: Any] {
    let system = o.system
    let count = o.int("followers", 100), tokens = o.int("tokens", 200), warmup = o.int("warmup", 5)
    let text = o.text(size: o.int("token-size", 16), count: warmup + tokens)
    let id = o.string("id"), follow = o.addresses("follow")
    let step = o.string("mode", "step") == "step"
    let errors = Errors()
    let publisher = Publisher(system: system, text: text, id: id, errors: errors)
    do { try await publisher.start(Address(o.string("publish"))) } catch { return ["error": "publisher: \(error)"] }
    if system != .nchan {
        for address in Set(follow.map(\.description)) where !(await waitLive(Address(address), id: id)) {
            return ["error": "the stream is not live on \(address)"]
        }
    }
    let progress = Progress(followers: count, tokens: text.count)
    let ready = Latch(count), done = Latch(count)
    let followers = await openFollowers(count, on: follow, make: { _ in
        let follower = Follower(system: system, text: text, live: false, errors: errors)
        follower.progress = progress
        follower.ready = ready
        follower.done = done
        follower.request = system.followRequest(id: id, text: text)
        return follower
    }, errors: errors)
    guard await ready.wait(timeout: .seconds(120)) else { return ["error": "followers not ready"] + errors.json }
    // A follower's response has begun, but its subscription may still be on its way (the Python
    // port answers a resume request after its response began): let them settle before the first
    // token, so that what is measured is the fan-out, not the join.
    try? await Task.sleep(for: .milliseconds(o.int("settle-ms", 1000)))
    for index in 1...max(warmup, 1) where index <= warmup {
        publisher.send(index)
        if !(await progress.wait(token: index - 1, timeout: .seconds(30))) {
            errors.add("timeout", "warm-up token \(index) did not reach every follower")
        }
    }
    if o.flag("pause") {
        emit(["phase": "warm"])
        await waitForLine()
    }
    var latencies: [Double] = []
    let start = now()
    var end = start
    if step {
        for index in (warmup + 1)...(warmup + tokens) where progress.followers > 0 {
            let sent = now()
            publisher.send(index)
            guard await progress.wait(token: index - 1, timeout: .seconds(30)) else {
                errors.add("timeout", "token \(index) did not reach every follower within 30 s")
                break
            }
            let arrival = progress.arrival(index - 1)
            latencies.append(ms(sent, arrival))
            end = arrival
        }
    } else {
        publisher.sendAll((warmup + 1)..<(warmup + tokens + 1))
        if await progress.wait(token: text.count - 1, timeout: .seconds(300)) {
            end = progress.arrival(text.count - 1)
        } else {
            errors.add("timeout", "the free-running source did not reach every follower within 300 s")
        }
    }
    if o.flag("pause") {
        emit(["phase": "sent"])
        await waitForLine()
    }
    let status = await publisher.finish()
    _ = await done.wait(timeout: .seconds(30))
    let incomplete = followers.filter { !$0.0.completed && !$0.0.failed }.count
    if incomplete > 0 { errors.add("no_end", "\(incomplete) followers did not see the stream end") }
    for (follower, connection) in followers { follower.stop(connection) }
    publisher.close()
    let alive = progress.followers
    // How many events carried the tokens: a source that sends faster than it is read gets its
    // tokens read together, and they go out as fewer, larger events.
    let events = followers.map { Double($0.0.checker.events) }.reduce(0, +) / Double(max(count, 1))
    var result: [String: Any] = [
        "followers": count, "alive": alive, "tokens": tokens, "ingest_status": status,
        "events_per_follower": events,
        "elapsed_s": ms(start, end) / 1000,
        "chunks_per_s": end > start ? Double(alive * latencies.count.orIfZero(tokens)) / (ms(start, end) / 1000) : 0,
    ]
    if step {
        result["p50_ms"] = percentile(latencies, 50)
        result["p99_ms"] = percentile(latencies, 99)
        result["measured_tokens"] = latencies.count
    }
    return result + errors.json
}

extension Int {
    func orIfZero(_ other: Int) -> Int { self == 0 ? other : self }
}

func + (a: [String: Any], b: [String: Any]) -> [String: Any] { a.merging(b) { x, _ in x } }

/// The limit: nginx sending the same bytes from a file. In step, every client fetches one event
/// (kept-alive connections, all at once) per round; free-running, each fetches the whole file.
func staticFanout(_ o: Options) async -> [String: Any] {
    let count = o.int("followers", 100), tokens = o.int("tokens", 200)
    let step = o.string("mode", "step") == "step"
    let text = o.text(size: o.int("token-size", 16), count: step ? 1 : tokens)
    let errors = Errors()
    let followers = await openFollowers(count, on: o.addresses("follow"), make: { _ in
        let follower = Follower(system: .static, text: text, live: false, errors: errors)
        follower.request = SystemKind.static.followRequest(id: "", text: text)
        follower.closeWhenComplete = false
        follower.fetches = step ? 1 : o.int("repeat", 1)
        return follower
    }, errors: errors, start: false).filter { $0.1 != nil }
    var latencies: [Double] = []
    let start = now()
    var end = start
    let rounds = step ? tokens : 1
    for _ in 0..<rounds {
        let latch = Latch(followers.count)
        for (follower, connection) in followers {
            follower.reset()
            follower.done = latch
            follower.fetches = step ? 1 : o.int("repeat", 1)
            follower.start(on: connection!)
        }
        let sent = now()
        guard await latch.wait(timeout: .seconds(60)) else {
            errors.add("timeout", "a round did not complete")
            break
        }
        let last = followers.map(\.0.completedAt).max() ?? sent
        latencies.append(ms(sent, last))
        end = last
    }
    for (follower, connection) in followers { follower.stop(connection) }
    let delivered = step ? latencies.count : tokens * o.int("repeat", 1)
    var result: [String: Any] = [
        "followers": count, "alive": followers.count, "tokens": tokens,
        "elapsed_s": ms(start, end) / 1000,
        "chunks_per_s": Double(followers.count * delivered) / (ms(start, end) / 1000),
    ]
    if step {
        result["p50_ms"] = percentile(latencies, 50)
        result["p99_ms"] = percentile(latencies, 99)
    }
    return result + errors.json
}

func createRequest(_ system: SystemKind, id: String, text: TokenText) -> [UInt8] {
    if system == .static { return system.followRequest(id: id, text: text) }
    let body = "{\"source\":\"demo\",\"parameters\":{\"count\":\(text.count),\"intervalMs\":0,\"tokenSize\":\(text.size)}}"
    return request("POST", "/streams/\(id)", headers: ["Content-Type: application/json", "Accept: text/event-stream"], body: Array(body.utf8))
}

/// Short streams: `streams` creators at once, each reading its own demo stream to its end.
func short(_ o: Options) async -> [String: Any] {
    let system = o.system, count = o.int("streams", 1000), prefix = o.string("id")
    let text = o.text(size: o.int("token-size", 16), count: o.int("count", 100))
    let errors = Errors()
    let done = Latch(count)
    let followers = (0..<count).map { index -> Follower in
        let follower = Follower(system: system, text: text, live: false, errors: errors)
        follower.done = done
        follower.request = createRequest(system, id: "\(prefix)-\(index)", text: text)
        return follower
    }
    let target = Address(o.string("target"))
    let connections = await connectMany(count) { index in try await connect(target, consumer: followers[index]) }
    let start = now()
    for (follower, connection) in zip(followers, connections) {
        if let connection { follower.start(on: connection) } else { errors.add("connect", "a connection failed"); done.countDown() }
    }
    if !(await done.wait(timeout: .seconds(300))) { errors.add("timeout", "streams still running after 300 s") }
    for (follower, connection) in zip(followers, connections) { follower.stop(connection) }
    let ok = followers.filter(\.completed)
    let end = ok.map(\.completedAt).max() ?? start
    let latencies = ok.map { ms($0.startedAt, $0.completedAt) }
    return [
        "streams": count, "completed": ok.count, "elapsed_s": ms(start, end) / 1000,
        "chunks_per_s": Double(ok.count * text.count) / max(ms(start, end) / 1000, 1e-9),
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
    ] + errors.json
}

/// New short streams at a steady rate on one instance, each on a new connection.
func sustained(_ o: Options) async -> [String: Any] {
    let system = o.system, rate = o.int("rate", 1000), seconds = o.int("seconds", 10), prefix = o.string("id")
    let text = o.text(size: o.int("token-size", 16), count: o.int("count", 100))
    let target = Address(o.string("target"))
    let errors = Errors()
    let perTick = max(rate / 100, 1)
    let total = perTick * 100 * seconds
    let results = ResultsBox()
    let start = now()
    await withTaskGroup(of: Void.self) { tasks in
        for tick in 0..<(100 * seconds) {
            let due = start + UInt64(tick) * 10_000_000
            let wait = Int64(due) - Int64(now())
            if wait > 0 { try? await Task.sleep(for: .nanoseconds(wait)) }
            for k in 0..<perTick {
                let index = tick * perTick + k
                tasks.addTask {
                    let follower = Follower(system: system, text: text, live: false, errors: errors)
                    follower.request = createRequest(system, id: "\(prefix)-\(index)", text: text)
                    let began = now()
                    guard let connection = try? await connect(target, consumer: follower) else {
                        errors.add("connect", "a connection failed")
                        return
                    }
                    let latch = Latch(1)
                    follower.done = latch
                    follower.start(on: connection)
                    if await latch.wait(timeout: .seconds(30)) {
                        if follower.completed { results.add(ms(began, follower.completedAt), at: follower.completedAt) }
                    } else {
                        errors.add("timeout", "a stream did not end within 30 s")
                    }
                    follower.stop(connection)
                }
            }
        }
    }
    let (latencies, last) = results.values
    return [
        "offered": total, "offered_per_s": rate, "completed": latencies.count,
        "completed_per_s": Double(latencies.count) / max(ms(start, last) / 1000, Double(seconds)),
        "refused": errors.count("http_503"),
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
    ] + errors.json
}

final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var latencies: [Double] = []
    private var last: UInt64 = 0
    func add(_ latency: Double, at time: UInt64) {
        lock.lock(); latencies.append(latency); last = max(last, time); lock.unlock()
    }
    var values: ([Double], UInt64) { lock.lock(); defer { lock.unlock() }; return (latencies, last) }
}

/// Feeds a stream of `tokens` tokens to the first instance and keeps it live (its body is not
/// ended), then reads it once whole on the second, so that both have it all.
func liveStream(_ o: Options, text: TokenText, errors: Errors) async -> (Publisher?, String?) {
    let system = o.system, id = o.string("id")
    guard system != .static else { return (nil, nil) }
    let publisher = Publisher(system: system, text: text, id: id, errors: errors)
    do { try await publisher.start(Address(o.string("publish"))) } catch { return (nil, "publisher: \(error)") }
    let follow = Address(o.string("follow"))
    if system != .nchan, !(await waitLive(follow, id: id)) { return (nil, "the stream is not live on \(follow)") }
    if text.count > 0 {
        publisher.sendAll(1..<(text.count + 1))
        _ = await publisher.chainDone.wait(timeout: .seconds(120))
        let (time, _, ok) = await readOnce(o, text: text, errors: errors)
        if !ok { return (publisher, "the first reader did not get the whole stream (\(ms(time)) ms)") }
    }
    return (publisher, nil)
}

/// One reader of the whole stream on a new connection: (whole, first text, ok), in nanoseconds.
func readOnce(_ o: Options, text: TokenText, errors: Errors, timeout: TimeAmount = .seconds(60)) async -> (UInt64, UInt64, Bool) {
    let system = o.system
    let follower = Follower(system: system, text: text, live: system != .static, errors: errors)
    let latch = Latch(1)
    follower.done = latch
    follower.request = system.followRequest(id: o.string("id", "static"), text: text, resumeAt: 0)
    guard let connection = try? await connect(Address(o.string("follow")), consumer: follower) else {
        errors.add("connect", "a connection failed")
        return (0, 0, false)
    }
    follower.start(on: connection)
    let ok = await latch.wait(timeout: timeout)
    if !ok { errors.add("timeout", "a reader did not get the whole stream in time (at \(follower.checker.offset))") }
    follower.stop(connection)
    let completed = ok && follower.completed
    return (completed ? follower.completedAt - follower.startedAt : 0, follower.firstTextAt > 0 ? follower.firstTextAt - follower.startedAt : 0, completed)
}

/// Resumes from 0 of a live stream held on another instance, one after another.
func resume(_ o: Options) async -> [String: Any] {
    let text = o.text(size: o.int("token-size", 16384), count: o.int("tokens", 64))
    let errors = Errors()
    let (publisher, problem) = await liveStream(o, text: text, errors: errors)
    if let problem { publisher?.close(); return ["error": problem] + errors.json }
    var first: [Double] = [], whole: [Double] = []
    for _ in 0..<o.int("resumes", 200) {
        let (time, firstText, ok) = await readOnce(o, text: text, errors: errors)
        if ok {
            whole.append(ms(time))
            first.append(ms(firstText))
        }
    }
    let status = await publisher?.finish() ?? 201
    publisher?.close()
    return [
        "bytes": text.total, "resumes": o.int("resumes", 200), "completed": whole.count, "ingest_status": status,
        "first_p50_ms": percentile(first, 50), "first_p99_ms": percentile(first, 99),
        "whole_p50_ms": percentile(whole, 50), "whole_p99_ms": percentile(whole, 99),
        "mib_per_s": Double(text.total) / 1_048_576 / (percentile(whole, 50) / 1000),
    ] + errors.json
}

/// Idle followers of a live stream that sends nothing; pauses for the caller to measure memory.
func idle(_ o: Options) async -> [String: Any] {
    let system = o.system, count = o.int("followers", 2000), id = o.string("id")
    let text = o.text(size: 16, count: 1)
    let errors = Errors()
    let (publisher, problem) = await liveStream(o, text: TokenText(size: 16, count: 0), errors: errors)
    if let problem { publisher?.close(); return ["error": problem] + errors.json }
    emit(["phase": "before"])
    await waitForLine()
    let ready = Latch(count)
    let started = now()
    let followers = await openFollowers(count, on: [Address(o.string("follow"))], make: { _ in
        let follower = Follower(system: system, text: text, live: true, errors: errors)
        follower.ready = ready
        follower.request = system.followRequest(id: id, text: text)
        return follower
    }, errors: errors, receiveBuffer: nil)
    let allReady = await ready.wait(timeout: .seconds(180))
    let connectedIn = ms(started, now())
    let open = followers.filter { !$0.0.failed && $0.1 != nil }.count
    emit(["phase": "connected", "open": open, "all_ready": allReady, "seconds": connectedIn / 1000] + errors.json)
    await waitForLine()
    let still = followers.filter { !$0.0.failed && !($0.1?.isClosed ?? true) }.count
    for (follower, connection) in followers { follower.stop(connection) }
    publisher?.close()
    return ["followers": count, "open": open, "open_at_end": still, "connect_s": connectedIn / 1000] + errors.json
}

/// Readers of a big live stream that never read (small receive buffers), one normal reader beside
/// them; pauses for the caller to measure memory and CPU.
func stalled(_ o: Options) async -> [String: Any] {
    let system = o.system, count = o.int("readers", 1000), id = o.string("id", "static")
    let text = o.text(size: o.int("token-size", 16384), count: o.int("tokens", 512))
    let errors = Errors()
    let (publisher, problem) = await liveStream(o, text: text, errors: errors)
    if let problem { publisher?.close(); return ["error": problem] + errors.json }
    emit(["phase": "before"])
    await waitForLine()
    let stalledErrors = Errors()
    let readers = await openFollowers(count, on: [Address(o.string("follow"))], make: { _ in
        let follower = Follower(system: system, text: text, live: true, errors: stalledErrors)
        follower.request = system.followRequest(id: id, text: text, resumeAt: 0)
        return follower
    }, errors: stalledErrors, receiveBuffer: o.int("rcvbuf", 4096), autoRead: false)
    try? await Task.sleep(for: .seconds(2))
    emit(["phase": "stalled", "open": readers.filter { $0.1 != nil }.count])
    await waitForLine()
    let (time, first, ok) = await readOnce(o, text: text, errors: errors, timeout: .seconds(120))
    emit(["phase": "reader", "ok": ok])
    await waitForLine()
    for (follower, connection) in readers { follower.stop(connection) }
    emit(["phase": "closed"])
    await waitForLine()
    let status = await publisher?.finish() ?? 201
    publisher?.close()
    return [
        "readers": count, "bytes": text.total, "reader_ok": ok, "ingest_status": status,
        "reader_first_ms": ms(first), "reader_whole_ms": ms(time),
        "reader_mib_per_s": ok ? Double(text.total) / 1_048_576 / (ms(time) / 1000) : 0,
        "stalled_connect_errors": stalledErrors.total,
    ] + errors.json
}
