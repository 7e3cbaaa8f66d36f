/// The consumer's side of the protocol, for one upstream: request, acknowledgement, data, end, and
/// the checks that keep a follower from waiting forever.
///
/// The reference waits for the first message after its request and, when it does not come in time,
/// reads the sentinel: `DONE` means the stream finished, anything else is a timeout. This project
/// also recovers from gaps (by asking again from what it has) and, while idle, checks that the
/// stream is still live, so that a lost end message or a dead producer does not leave it open.
///
/// Whether the producer lives is read from its sentinel's lease alone, never from counts of
/// subscribers (they count one node only in a Redis Cluster): a sentinel that has gone means the
/// producer stopped renewing it. While it recovers from a gap (Redis restarted, the subscriber
/// reconnected, a call to Redis failed) the follower asks again until the producer answers, the
/// sentinel says `DONE`, the sentinel has been gone for `recoveryLimit` (a live producer
/// re-asserts it within a third of its lease once Redis is back), or the broker has failed every
/// call for `brokerOutageLimit`. A value type that does no I/O; time comes in as arguments.
struct FollowerHandshake {
    typealias Instant = ContinuousClock.Instant

    enum State: Equatable {
        /// The request is published; the first message will acknowledge it.
        case requested
        case streaming
        /// Waiting for the sentinel, read because the acknowledgement did not come in time.
        case checkingAfterTimeout
        /// Waiting for the sentinel, read because the stream was idle.
        case checkingWhileIdle
        /// The stream is live and idle: asking its producer to name itself (a producer of this
        /// project that is not the one followed means a new stream under the same id).
        case probing
        case done
    }

    enum Action: Equatable {
        /// The first message arrived: the stream is acknowledged; append the text.
        case acknowledge(String)
        case append(String)
        case finish(StreamBuffer.Outcome)
        /// Read the sentinel, then call `checked` (or `brokerFailed`).
        case check
        /// Messages may be lost: subscribe a new listener and ask again from the current length.
        case requestAgain
        /// Ask the producer to name itself on a listener of its own, then call `probed`.
        case probe
        case none
    }

    private(set) var state = State.requested
    /// Messages were lost once already: a stream found finished now may lack its end.
    private(set) var hadGap = false
    /// How long the sentinel may be found gone, while recovering, before the producer is lost.
    let recoveryLimit: Duration
    /// How long the broker may fail every call, while recovering, before the follower gives up.
    let brokerOutageLimit: Duration
    /// While recovering: since when Redis has answered that the sentinel is gone.
    private(set) var sentinelMissingSince: Instant?
    /// While recovering: since when every call to the broker has failed.
    private(set) var brokerFailingSince: Instant?
    /// Since the last acknowledgement the subscription had a gap or a call failed: Redis may have
    /// restarted empty, so a sentinel found gone may come back (its producer re-asserts it). After
    /// a mere silence, a sentinel that has gone means the producer has.
    private(set) var redisMayHaveRestarted = false

    /// The producer that answered first, when it named itself.
    private(set) var producerId: String?
    /// For the errors the follower ends with.
    let streamId: String

    init(streamId: String, recoveryLimit: Duration = .seconds(20), brokerOutageLimit: Duration = .seconds(60)) {
        self.streamId = streamId
        self.recoveryLimit = recoveryLimit
        self.brokerOutageLimit = brokerOutageLimit
    }

    mutating func received(_ message: String) -> Action {
        switch state {
        case .done:
            return .none
        case .requested, .checkingAfterTimeout:
            // The first message of an answer; a producer of this project names itself in it. One
            // that is not the producer this follower had is a new stream under the same id: the
            // one followed has gone.
            let (producer, rest) = WireProtocol.producerMark(of: message)
            if let producer {
                if let known = producerId, known != producer {
                    state = .done
                    return .finish(.failed(.producerLost(streamId: streamId)))
                }
                producerId = producer
            }
            let message = String(rest)
            if let reason = WireProtocol.endReason(of: message) {
                return finish(reason)
            }
            state = .streaming
            sentinelMissingSince = nil
            brokerFailingSince = nil
            redisMayHaveRestarted = false
            return .acknowledge(message)
        case .streaming, .checkingWhileIdle, .probing:
            if let reason = WireProtocol.endReason(of: message) {
                return finish(reason)
            }
            state = .streaming
            return .append(message)
        }
    }

    mutating func acknowledgementTimedOut() -> Action {
        guard state == .requested else { return .none }
        state = .checkingAfterTimeout
        return .check
    }

    mutating func idle() -> Action {
        guard state == .streaming else { return .none }
        state = .checkingWhileIdle
        return .check
    }

    /// The result of `.check`: the sentinel's value (`nil` when it has gone), read at `now`.
    mutating func checked(sentinel: String?, now: Instant) -> Action {
        switch state {
        case .checkingAfterTimeout:
            // As the reference: a producer that finished meanwhile is not an error, unless this
            // request was to recover from a gap, whose text is now lost.
            if sentinel == WireProtocol.doneValue {
                guard hadGap else { return finish(.completed) }
                state = .done
                return .finish(.failed(.missedEnd(streamId: streamId)))
            }
            if hadGap {
                brokerFailingSince = nil
                if sentinel == nil {
                    guard redisMayHaveRestarted else {
                        state = .done
                        return .finish(.failed(.producerLost(streamId: streamId)))
                    }
                    let since = sentinelMissingSince ?? now
                    sentinelMissingSince = since
                    if now - since >= recoveryLimit {
                        state = .done
                        return .finish(.failed(.producerLost(streamId: streamId)))
                    }
                } else {
                    sentinelMissingSince = nil
                }
                state = .requested
                return .requestAgain
            }
            state = .done
            return .finish(.failed(.acknowledgementTimeout(streamId: streamId)))
        case .checkingWhileIdle:
            if sentinel == WireProtocol.doneValue {
                // The end message was lost, or chunks before it too, or the id was created anew
                // and finished since this follower's producer died: only an answer tells. A
                // producer in its replay grace sends the rest and the end; none answering leaves
                // `.missedEnd`, never a text that may be shorter taken as complete.
                hadGap = true
                state = .requested
                return .requestAgain
            }
            if sentinel == nil {
                state = .done
                return .finish(.failed(.producerLost(streamId: streamId)))
            }
            // Live and silent. Asking again now would race the end of the stream (the answer to
            // the old listener is dropped with it); a producer that stopped answering this
            // follower (its PUBLISH failed) is found at the latest when the stream ends. A producer
            // of this project is asked to name itself: the id may have been created anew since
            // the one followed died.
            guard producerId != nil else {
                state = .streaming
                return .none
            }
            state = .probing
            return .probe
        case .requested, .streaming, .probing, .done:
            // A message arrived while the check ran; its outcome no longer matters.
            return .none
        }
    }

    /// The answer to `.probe`: the producer that named itself (`nil` when none answered in time),
    /// and whether it still answers this follower's listener.
    mutating func probed(producer: String?, answering: Bool) -> Action {
        guard state == .probing else { return .none }
        if let producer, let known = producerId, producer != known {
            state = .done
            return .finish(.failed(.producerLost(streamId: streamId)))
        }
        if producer != nil, !answering {
            // Its PUBLISH to this follower failed and it gave the listener up: nothing more comes
            // on it, so asking again with a new one races nothing.
            hadGap = true
            state = .requested
            return .requestAgain
        }
        // The same producer, or no answer: the lease tells whether it lives.
        state = .streaming
        return .none
    }

    /// The broker did not answer the check, or the subscribe or request of a new upstream.
    /// Nothing is known of the producer, and what it published meanwhile may be lost (its PUBLISH
    /// failed as this call did): a follower that was streaming asks again from what it has, as
    /// after a gap, until the broker answers; only a first request fails, with the broker's error.
    mutating func brokerFailed(_ reason: String, now: Instant) -> Action {
        switch state {
        case .done:
            return .none
        case .checkingWhileIdle, .streaming, .probing:
            hadGap = true
        case .requested, .checkingAfterTimeout:
            guard hadGap else {
                state = .done
                return .finish(.failed(.broker(reason)))
            }
        }
        redisMayHaveRestarted = true
        let since = brokerFailingSince ?? now
        brokerFailingSince = since
        guard now - since < brokerOutageLimit else {
            state = .done
            return .finish(.failed(.broker(reason)))
        }
        state = .requested
        return .requestAgain
    }

    /// The follower gave up (a broker error, a full buffer): nothing more is processed.
    mutating func abandon() {
        state = .done
    }

    mutating func gap() -> Action {
        switch state {
        case .done:
            return .none
        case .requested, .checkingAfterTimeout, .streaming, .checkingWhileIdle, .probing:
            state = .requested
            hadGap = true
            redisMayHaveRestarted = true
            return .requestAgain
        }
    }

    private mutating func finish(_ reason: WireProtocol.EndReason) -> Action {
        state = .done
        switch reason {
        case .completed: return .finish(.completed)
        case .cancelled: return .finish(.failed(.cancelled))
        case .failed(let message): return .finish(.failed(.sourceFailed(message)))
        }
    }
}
