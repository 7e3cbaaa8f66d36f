import Testing

/// Waits until `condition` holds, checking again each time the task is scheduled; records an issue
/// after `timeout`. For state that only polling can see (a CLIENT LIST entry, a counter another
/// task raises), never as a pause: the condition is the event waited for.
public func eventually(
    timeout: Duration = .seconds(10),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        await Task.yield()
    }
    Issue.record("the condition did not hold within \(timeout)", sourceLocation: sourceLocation)
}
