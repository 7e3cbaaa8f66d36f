@testable import ResumableStreamHTTP
import Testing

/// The timers of a connection, without a socket: which one runs after each event.
struct ConnectionTimeoutsTests {
    @Test func theHeaderTimerRunsFromTheOpeningUntilTheHeadIsRead() {
        var timeouts = ConnectionTimeouts()
        #expect(timeouts.connectionOpened() == .start(.header))
        #expect(timeouts.connectionOpened() == .none)
        // Bytes that make no part yet do not restart it.
        #expect(timeouts.readComplete() == .none)
        #expect(timeouts.running == .header)
        #expect(timeouts.headRead() == .stop)
        #expect(timeouts.running == nil)
    }

    @Test func noTimerRunsWhileAResponseIsOwedHoweverLongTheBodyOrTheResponseTakes() {
        var timeouts = ConnectionTimeouts()
        _ = timeouts.connectionOpened()
        _ = timeouts.headRead()
        #expect(timeouts.readComplete() == .none)
        #expect(timeouts.bodyRead(isEnd: false) == .none)
        #expect(timeouts.readComplete() == .none)
        // A pause in the body: a read that made no part.
        #expect(timeouts.readComplete() == .none)
        #expect(timeouts.bodyRead(isEnd: true) == .none)
        #expect(timeouts.readComplete() == .none)
        #expect(timeouts.running == nil)
        #expect(timeouts.fired(.header) == false)
        #expect(timeouts.fired(.idle) == false)
    }

    @Test func betweenRequestsTheIdleTimerRunsUntilTheNextHeadBegins() {
        var timeouts = ConnectionTimeouts()
        _ = timeouts.connectionOpened()
        _ = timeouts.headRead()
        _ = timeouts.bodyRead(isEnd: true)
        _ = timeouts.readComplete()
        #expect(timeouts.responseEnded() == .start(.idle))
        // The first bytes of the next head: from now on its head has the header timeout.
        #expect(timeouts.readComplete() == .start(.header))
        #expect(timeouts.readComplete() == .none)
        #expect(timeouts.headRead() == .stop)
        #expect(timeouts.bodyRead(isEnd: true) == .none)
        #expect(timeouts.readComplete() == .none)
        #expect(timeouts.responseEnded() == .start(.idle))
        #expect(timeouts.fired(.idle) == true)
        #expect(timeouts.running == nil)
    }

    @Test func pipelinedRequestsKeepTheTimersOffUntilTheLastResponseEnds() {
        var timeouts = ConnectionTimeouts()
        _ = timeouts.connectionOpened()
        _ = timeouts.headRead()
        _ = timeouts.bodyRead(isEnd: true)
        _ = timeouts.headRead()
        _ = timeouts.bodyRead(isEnd: true)
        _ = timeouts.readComplete()
        #expect(timeouts.responseEnded() == .none)
        #expect(timeouts.responseEnded() == .start(.idle))
    }

    @Test func theRestOfABodyAfterAnEarlyAnswerIsIdleTime() {
        var timeouts = ConnectionTimeouts()
        _ = timeouts.connectionOpened()
        _ = timeouts.headRead()
        #expect(timeouts.responseEnded() == .start(.idle))
        #expect(timeouts.bodyRead(isEnd: false) == .start(.idle))
        // Bytes of the body that made no part are not the start of a head.
        #expect(timeouts.readComplete() == .none)
        #expect(timeouts.bodyRead(isEnd: true) == .start(.idle))
        #expect(timeouts.running == .idle)
    }

    @Test func aTimerThatIsNoLongerTheOneRunningClosesNothing() {
        var timeouts = ConnectionTimeouts()
        _ = timeouts.connectionOpened()
        #expect(timeouts.fired(.idle) == false)
        #expect(timeouts.connectionClosed() == .stop)
        #expect(timeouts.fired(.header) == false)
    }
}
