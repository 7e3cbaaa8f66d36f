import Testing

/// Waits until `condition` holds, checking it again and again; records an issue
/// after `timeout`. For state held elsewhere that only polling can see (a CLIENT LIST entry, a
/// subscription count in Redis, a server's count of its readers), never as a pause: the condition is
/// the event waited for. A count the test's own tasks keep is a ``Tally``, waited on without polling.
public func eventually(
    timeout: Duration = .seconds(10),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    if try await poll(until: ContinuousClock.now + timeout, condition) { return }
    Issue.record("the condition did not hold within \(timeout)", sourceLocation: sourceLocation)
}

/// Checks `condition` again and again until it holds (`true`) or `deadline` passes (`false`).
/// ``eventually(timeout:sourceLocation:_:)`` records an issue on `false`; set-up code (a cluster
/// that must form) throws its own error with what it saw.
public func poll(until deadline: ContinuousClock.Instant, _ condition: () async throws -> Bool) async throws -> Bool {
    // Checks again after a short wait that grows to 20 ms: spinning on Task.yield would take the
    // cores from the very work the condition waits for, when many tests wait at once.
    var interval = Duration.microseconds(100)
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
        interval = min(interval * 2, .milliseconds(20))
    }
    return false
}

/// `body`'s result, or `nil` if it has none within `timeout` (`body` is then cancelled). A bound on
/// a wait for an event (a reply, a condition another task signals), never a pause: the one place
/// the tests race their waits against the clock.
public func within<Result: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> Result) async throws -> Result? {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next() ?? nil
    }
}
