/// Which timer an HTTP/1.1 connection runs, as its requests and responses come and go. A value
/// that does no I/O: ``ConnectionTimeoutHandler`` tells it what happened and carries out the
/// action it returns.
///
/// - The header timer runs from the moment a connection opens, or from the first bytes of a request
///   that follows another, until that request's head has been read whole: a client that sends
///   nothing, or trickles its head, is cut after it.
/// - The idle timer runs between requests on a kept-alive connection: from the end of the last
///   response until the next request's first bytes.
/// - No timer runs while a response is owed: a request body may pause (a slow upload), and a
///   response may stream for minutes.
struct ConnectionTimeouts: Equatable {
    enum Timer: Equatable {
        case header
        case idle
    }

    enum Action: Equatable {
        /// Start `Timer`, replacing the one that runs.
        case start(Timer)
        /// Stop the timer that runs.
        case stop
        case none
    }

    /// The timer that runs.
    private(set) var running: Timer?
    private var opened = false
    /// Requests whose head was read and whose response has not ended.
    private var responsesOwed = 0
    /// Between a request's head and its end.
    private var readingRequest = false
    /// Whether the current read of the socket produced a part; a read that produced none brought
    /// the first bytes of a head.
    private var partInThisRead = false

    mutating func connectionOpened() -> Action {
        guard !opened else { return .none }
        opened = true
        return start(.header)
    }

    mutating func headRead() -> Action {
        partInThisRead = true
        responsesOwed += 1
        readingRequest = true
        return stop()
    }

    /// A body part or the end of a request. When its response has already ended (an early answer,
    /// such as a body too large), the rest of the body is idle time: each part restarts the timer.
    mutating func bodyRead(isEnd: Bool) -> Action {
        partInThisRead = true
        if isEnd { readingRequest = false }
        return running == .idle ? .start(.idle) : .none
    }

    /// The socket's read is over. Bytes that made no part, on a connection waiting for its next
    /// request, are the start of a head: the header timer runs from now.
    mutating func readComplete() -> Action {
        defer { partInThisRead = false }
        guard !partInThisRead, running == .idle, !readingRequest else { return .none }
        return start(.header)
    }

    mutating func responseEnded() -> Action {
        responsesOwed = max(responsesOwed - 1, 0)
        guard responsesOwed == 0 else { return .none }
        return start(.idle)
    }

    /// Whether the connection is to be closed: the timer that fired is the one that runs.
    mutating func fired(_ timer: Timer) -> Bool {
        guard running == timer else { return false }
        running = nil
        return true
    }

    mutating func connectionClosed() -> Action {
        stop()
    }

    private mutating func start(_ timer: Timer) -> Action {
        running = timer
        return .start(timer)
    }

    private mutating func stop() -> Action {
        guard running != nil else { return .none }
        running = nil
        return .stop
    }
}
