/// The consumer's side of the protocol, for one upstream: request, acknowledgement, data, end, and
/// the checks that keep a follower from waiting forever.
///
/// The reference waits for the first message after its request and, when it does not come in time,
/// reads the sentinel: `DONE` means the stream finished, anything else is a timeout. This project
/// also recovers from gaps (by asking again from what it has) and, while idle, checks that the
/// stream is still live, so that a lost end message or a dead producer does not leave it open.
/// A value type that does no I/O.
struct FollowerHandshake {
    enum State: Equatable {
        /// The request is published; the first message will acknowledge it.
        case requested
        case streaming
        /// Waiting for the sentinel, read because the acknowledgement did not come in time.
        case checkingAfterTimeout
        /// Waiting for the sentinel, read because the stream was idle.
        case checkingWhileIdle
        case done
    }

    enum Action: Equatable {
        /// The first message arrived: the stream is acknowledged; append the text.
        case acknowledge(String)
        case append(String)
        case finish(StreamBuffer.Outcome)
        /// Read the sentinel and count the request channel's subscribers, then call `checked`.
        case check
        /// Messages may be lost: subscribe a new listener and ask again from the current length.
        case requestAgain
        case none
    }

    private(set) var state = State.requested
    /// Messages were lost once already: a stream found finished now may lack its end.
    private(set) var hadGap = false

    mutating func received(_ message: String) -> Action {
        switch state {
        case .done:
            return .none
        case .requested, .checkingAfterTimeout:
            if let reason = WireProtocol.endReason(of: message) {
                return finish(reason)
            }
            state = .streaming
            return .acknowledge(message)
        case .streaming, .checkingWhileIdle:
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

    /// The request reached no subscriber: no producer listens, so there is no use waiting for an
    /// acknowledgement. Checked at once, as after a timeout.
    mutating func requestUnheard() -> Action {
        acknowledgementTimedOut()
    }

    mutating func idle() -> Action {
        guard state == .streaming else { return .none }
        state = .checkingWhileIdle
        return .check
    }

    /// The result of `.check`: the sentinel's value and the request channel's subscriber count.
    mutating func checked(sentinel: String?, producers: Int, streamId: String) -> Action {
        switch state {
        case .checkingAfterTimeout:
            // As the reference: a producer that finished meanwhile is not an error, unless this
            // request was to recover from a gap, whose text is now lost.
            if sentinel == WireProtocol.doneValue {
                guard hadGap else { return finish(.completed) }
                state = .done
                return .finish(.failed(.missedEnd(streamId: streamId)))
            }
            state = .done
            return .finish(.failed(.acknowledgementTimeout(streamId: streamId)))
        case .checkingWhileIdle:
            if sentinel == WireProtocol.doneValue {
                // The end message was lost; the stream is over.
                return finish(.completed)
            }
            if sentinel == nil || producers == 0 {
                state = .done
                return .finish(.failed(.producerLost(streamId: streamId)))
            }
            state = .streaming
            return .none
        case .requested, .streaming, .done:
            // A message arrived while the check ran; its outcome no longer matters.
            return .none
        }
    }

    /// The follower gave up (a broker error, a full buffer): nothing more is processed.
    mutating func abandon() {
        state = .done
    }

    mutating func gap() -> Action {
        switch state {
        case .done:
            return .none
        case .requested, .checkingAfterTimeout, .streaming, .checkingWhileIdle:
            state = .requested
            hadGap = true
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
