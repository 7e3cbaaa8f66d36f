@testable import ResumableStream
import Testing

struct FollowerHandshakeTests {
    private let end = WireProtocol.endMessage

    /// A handshake whose request was acknowledged.
    private func streaming() -> FollowerHandshake {
        var handshake = FollowerHandshake(streamId: "s")
        _ = handshake.received("ack")
        return handshake
    }

    /// A handshake whose request was not acknowledged in time and is reading the sentinel.
    private func checkingAfterTimeout() -> FollowerHandshake {
        var handshake = FollowerHandshake(streamId: "s")
        _ = handshake.acknowledgementTimedOut()
        return handshake
    }

    /// A handshake that found the stream idle and is reading the sentinel.
    private func checkingWhileIdle() -> FollowerHandshake {
        var handshake = streaming()
        _ = handshake.idle()
        return handshake
    }

    // MARK: messages

    @Test func startsRequested() {
        #expect(FollowerHandshake(streamId: "s").state == .requested)
    }

    @Test func firstMessageAcknowledges() {
        var handshake = FollowerHandshake(streamId: "s")
        #expect(handshake.received("hello") == .acknowledge("hello"))
        #expect(handshake.state == .streaming)
    }

    @Test func emptyFirstMessageAcknowledges() {
        var handshake = FollowerHandshake(streamId: "s")
        #expect(handshake.received("") == .acknowledge(""))
        #expect(handshake.state == .streaming)
    }

    @Test func laterMessagesAppend() {
        var handshake = streaming()
        #expect(handshake.received("a") == .append("a"))
        #expect(handshake.received("b") == .append("b"))
        #expect(handshake.state == .streaming)
    }

    @Test func endMessageCompletes() {
        var handshake = streaming()
        #expect(handshake.received(end) == .finish(.completed))
        #expect(handshake.state == .done)
    }

    @Test func endMessageBeforeAnyDataCompletes() {
        var handshake = FollowerHandshake(streamId: "s")
        #expect(handshake.received(end) == .finish(.completed))
        #expect(handshake.state == .done)
    }

    @Test func extendedCancelEndFailsAsCancelled() {
        var handshake = streaming()
        let message = WireProtocol.endMessage(.cancelled, extended: true)
        #expect(handshake.received(message) == .finish(.failed(.cancelled)))
    }

    @Test func extendedFailedEndFailsWithTheSourceReason() {
        var handshake = streaming()
        let message = WireProtocol.endMessage(.failed("disk full"), extended: true)
        #expect(handshake.received(message) == .finish(.failed(.sourceFailed("disk full"))))
    }

    // MARK: acknowledgement timeout

    @Test func acknowledgementTimeoutChecks() {
        var handshake = FollowerHandshake(streamId: "s")
        #expect(handshake.acknowledgementTimedOut() == .check)
        #expect(handshake.state == .checkingAfterTimeout)
    }

    @Test func acknowledgementTimeoutWithDoneSentinelCompletes() {
        var handshake = checkingAfterTimeout()
        #expect(handshake.checked(sentinel: "DONE", now: t0) == .finish(.completed))
        #expect(handshake.state == .done)
    }

    @Test func acknowledgementTimeoutWithLiveSentinelFails() {
        var handshake = checkingAfterTimeout()
        let action = handshake.checked(sentinel: "1", now: t0)
        #expect(action == .finish(.failed(.acknowledgementTimeout(streamId: "s"))))
        #expect(handshake.state == .done)
    }

    @Test func acknowledgementTimeoutAfterAcknowledgementDoesNothing() {
        var handshake = streaming()
        #expect(handshake.acknowledgementTimedOut() == .none)
        #expect(handshake.state == .streaming)
    }

    @Test func acknowledgementArrivingDuringTheCheckWins() {
        var handshake = checkingAfterTimeout()
        #expect(handshake.received("late") == .acknowledge("late"))
        #expect(handshake.checked(sentinel: "1", now: t0) == .none)
        #expect(handshake.state == .streaming)
    }

    // MARK: idle checks

    @Test func idleWhileStreamingChecks() {
        var handshake = streaming()
        #expect(handshake.idle() == .check)
        #expect(handshake.state == .checkingWhileIdle)
    }

    @Test func idleBeforeAcknowledgementDoesNothing() {
        var handshake = FollowerHandshake(streamId: "s")
        #expect(handshake.idle() == .none)
        #expect(handshake.state == .requested)
    }

    @Test func idleWithDoneSentinelAsksForTheRest() {
        var handshake = checkingWhileIdle()
        #expect(handshake.checked(sentinel: "DONE", now: t0) == .requestAgain)
        // A producer in its replay grace sends the rest and the end.
        #expect(handshake.received(WireProtocol.endMessage) == .finish(.completed))
    }

    @Test func idleWithDoneSentinelAndNoAnswerMissedTheEnd() {
        var handshake = checkingWhileIdle()
        _ = handshake.checked(sentinel: "DONE", now: t0)
        _ = handshake.acknowledgementTimedOut()
        #expect(handshake.checked(sentinel: "DONE", now: t0) == .finish(.failed(.missedEnd(streamId: "s"))))
    }

    @Test func idleWithoutSentinelLostTheProducer() {
        var handshake = checkingWhileIdle()
        #expect(handshake.checked(sentinel: nil, now: t0) == .finish(.failed(.producerLost(streamId: "s"))))
        #expect(handshake.state == .done)
    }

    @Test func aSentinelGoneAfterAnIdleRequestLostTheProducerAtOnce() {
        // Nothing suggests Redis lost its state: the producer stopped renewing its lease.
        var handshake = checkingWhileIdle()
        _ = handshake.checked(sentinel: "DONE", now: t0)
        _ = handshake.acknowledgementTimedOut()
        #expect(handshake.checked(sentinel: nil, now: t0 + .seconds(1)) == .finish(.failed(.producerLost(streamId: "s"))))
    }

    @Test func idleWithALiveProducerGoesOnStreaming() {
        var handshake = checkingWhileIdle()
        #expect(handshake.checked(sentinel: "2", now: t0) == .none)
        #expect(handshake.state == .streaming)
        #expect(handshake.received("more") == .append("more"))
    }

    @Test func messageArrivingDuringAnIdleCheckWins() {
        var handshake = checkingWhileIdle()
        #expect(handshake.received("more") == .append("more"))
        #expect(handshake.checked(sentinel: nil, now: t0) == .none)
        #expect(handshake.state == .streaming)
    }

    @Test func endArrivingDuringAnIdleCheckWins() {
        var handshake = checkingWhileIdle()
        #expect(handshake.received(end) == .finish(.completed))
        #expect(handshake.checked(sentinel: nil, now: t0) == .none)
        #expect(handshake.state == .done)
    }

    // MARK: gaps

    @Test func gapWhileStreamingRequestsAgain() {
        var handshake = streaming()
        #expect(handshake.gap() == .requestAgain)
        #expect(handshake.state == .requested)
    }

    @Test func gapBeforeAcknowledgementRequestsAgain() {
        var handshake = FollowerHandshake(streamId: "s")
        #expect(handshake.gap() == .requestAgain)
        #expect(handshake.state == .requested)
    }

    @Test func firstMessageAfterAGapAcknowledgesAgain() {
        var handshake = streaming()
        _ = handshake.gap()
        #expect(handshake.received("again") == .acknowledge("again"))
    }

    // MARK: done

    @Test func afterTheEndEverythingIsIgnored() {
        var handshake = streaming()
        _ = handshake.received(end)
        #expect(handshake.received("late") == .none)
        #expect(handshake.received(end) == .none)
        #expect(handshake.gap() == .none)
        #expect(handshake.idle() == .none)
        #expect(handshake.acknowledgementTimedOut() == .none)
        #expect(handshake.checked(sentinel: "DONE", now: t0) == .none)
        #expect(handshake.state == .done)
    }

    @Test func abandonMakesItDone() {
        var handshake = streaming()
        handshake.abandon()
        #expect(handshake.state == .done)
        #expect(handshake.received("late") == .none)
        #expect(handshake.gap() == .none)
    }

    @Test func aStreamFoundFinishedAfterAGapIsAnErrorNotAnEnd() {
        var handshake = FollowerHandshake(streamId: "s")
        _ = handshake.received("")
        #expect(handshake.gap() == .requestAgain)
        #expect(handshake.acknowledgementTimedOut() == .check)
        #expect(handshake.checked(sentinel: "DONE", now: t0) == .finish(.failed(.missedEnd(streamId: "s"))))
    }

    // MARK: recovery after a gap

    @Test func aRecoveringFollowerAsksAgainWhileTheSentinelIsLive() {
        var handshake = recovering()
        #expect(handshake.acknowledgementTimedOut() == .check)
        #expect(handshake.checked(sentinel: "1", now: t0 + .seconds(100)) == .requestAgain)
        #expect(handshake.state == .requested)
    }

    @Test func aRecoveringFollowerAsksAgainWhileTheSentinelIsGoneWithinTheLimit() {
        // Redis restarted empty: the producer re-asserts its sentinel soon.
        var handshake = recovering()
        _ = handshake.acknowledgementTimedOut()
        #expect(handshake.checked(sentinel: nil, now: t0) == .requestAgain)
        _ = handshake.acknowledgementTimedOut()
        #expect(handshake.checked(sentinel: nil, now: t0 + .seconds(9)) == .requestAgain)
        #expect(handshake.sentinelMissingSince == t0)
    }

    @Test func aRecoveringFollowerWhoseSentinelStaysGoneLostTheProducer() {
        var handshake = recovering()
        _ = handshake.acknowledgementTimedOut()
        _ = handshake.checked(sentinel: nil, now: t0)
        _ = handshake.acknowledgementTimedOut()
        #expect(handshake.checked(sentinel: nil, now: t0 + .seconds(10)) == .finish(.failed(.producerLost(streamId: "s"))))
        #expect(handshake.state == .done)
    }

    @Test func aSentinelSeenAgainRestartsTheClock() {
        var handshake = recovering()
        _ = handshake.acknowledgementTimedOut()
        _ = handshake.checked(sentinel: nil, now: t0)
        _ = handshake.acknowledgementTimedOut()
        #expect(handshake.checked(sentinel: "1", now: t0 + .seconds(5)) == .requestAgain)
        #expect(handshake.sentinelMissingSince == nil)
        _ = handshake.acknowledgementTimedOut()
        #expect(handshake.checked(sentinel: nil, now: t0 + .seconds(12)) == .requestAgain)
    }

    @Test func anAnswerEndsTheRecovery() {
        var handshake = recovering()
        _ = handshake.acknowledgementTimedOut()
        _ = handshake.checked(sentinel: nil, now: t0)
        #expect(handshake.received("more") == .acknowledge("more"))
        #expect(handshake.sentinelMissingSince == nil)
        #expect(handshake.state == .streaming)
    }

    // MARK: broker failures

    @Test func aBrokerFailureWhileStreamingAsksAgainAsAfterAGap() {
        var handshake = checkingWhileIdle()
        #expect(handshake.brokerFailed("down", now: t0) == .requestAgain)
        #expect(handshake.state == .requested)
        #expect(handshake.hadGap)
        #expect(handshake.brokerFailingSince == t0)
    }

    @Test func aBrokerFailureOnTheFirstRequestFails() {
        var handshake = FollowerHandshake(streamId: "s")
        #expect(handshake.brokerFailed("down", now: t0) == .finish(.failed(.broker("down"))))
        #expect(handshake.state == .done)
    }

    @Test func aBrokerFailingWhileRecoveringIsAskedAgainUntilItsLimit() {
        var handshake = recovering()
        #expect(handshake.brokerFailed("down", now: t0) == .requestAgain)
        #expect(handshake.brokerFailed("down", now: t0 + .seconds(29)) == .requestAgain)
        #expect(handshake.brokerFailed("down", now: t0 + .seconds(30)) == .finish(.failed(.broker("down"))))
    }

    @Test func aBrokerThatAnswersAgainRestartsItsClock() {
        var handshake = recovering()
        _ = handshake.brokerFailed("down", now: t0)
        _ = handshake.acknowledgementTimedOut()
        _ = handshake.checked(sentinel: "1", now: t0 + .seconds(20))
        #expect(handshake.brokerFailingSince == nil)
        #expect(handshake.brokerFailed("down", now: t0 + .seconds(40)) == .requestAgain)
    }

    @Test func aBrokerFailureAfterTheEndDoesNothing() {
        var handshake = streaming()
        _ = handshake.received(end)
        #expect(handshake.brokerFailed("down", now: t0) == .none)
    }
}

/// A follower that had a gap and asks again; the sentinel may be gone for 10 s, the broker may fail
/// for 30 s.
private func recovering() -> FollowerHandshake {
    var handshake = FollowerHandshake(streamId: "s", recoveryLimit: .seconds(10), brokerOutageLimit: .seconds(30))
    _ = handshake.received("first")
    _ = handshake.gap()
    return handshake
}

private let t0 = ContinuousClock.now

/// A producer of this project names itself in the first message of each answer.
struct ProducerMarkTests {
    @Test func theMarkRoundTrips() {
        let marked = WireProtocol.marked("text", producer: "p-1")
        let (producer, message) = WireProtocol.producerMark(of: marked)
        #expect(producer == "p-1")
        #expect(message == "text")
        #expect(WireProtocol.producerMark(of: "plain").producer == nil)
        #expect(WireProtocol.producerMark(of: "plain").message == "plain")
    }

    @Test func aMarkedEndIsStillAnEnd() {
        var handshake = FollowerHandshake(streamId: "s")
        let end = WireProtocol.marked(WireProtocol.endMessage(.cancelled, extended: true), producer: "p-1")
        #expect(handshake.received(end) == .finish(.failed(.cancelled)))
    }

    @Test func theFirstAnswerNamesTheProducerAndItsTextIsUnmarked() {
        var handshake = FollowerHandshake(streamId: "s")
        #expect(handshake.received(WireProtocol.marked("abc", producer: "p-1")) == .acknowledge("abc"))
        #expect(handshake.producerId == "p-1")
    }

    @Test func anAnswerFromTheSameProducerAfterAGapIsTaken() {
        var handshake = FollowerHandshake(streamId: "s")
        _ = handshake.received(WireProtocol.marked("abc", producer: "p-1"))
        _ = handshake.gap()
        #expect(handshake.received(WireProtocol.marked("def", producer: "p-1")) == .acknowledge("def"))
    }

    @Test func anAnswerFromAnotherProducerIsANewStreamAndTheFollowedOneIsLost() {
        var handshake = FollowerHandshake(streamId: "s")
        _ = handshake.received(WireProtocol.marked("abc", producer: "p-1"))
        _ = handshake.gap()
        #expect(handshake.received(WireProtocol.marked("new", producer: "p-2")) == .finish(.failed(.producerLost(streamId: "s"))))
        #expect(handshake.state == .done)
    }

    @Test func aReferenceProducerThatNamesNothingIsTaken() {
        var handshake = FollowerHandshake(streamId: "s")
        #expect(handshake.received("abc") == .acknowledge("abc"))
        _ = handshake.gap()
        #expect(handshake.received("def") == .acknowledge("def"))
    }
}

/// An idle follower of a live stream asks a producer of this project to name itself.
struct ProbeTests {
    private func idleFollowerOf(_ producer: String?) -> FollowerHandshake {
        var handshake = FollowerHandshake(streamId: "s")
        _ = handshake.received(producer.map { WireProtocol.marked("abc", producer: $0) } ?? "abc")
        _ = handshake.idle()
        return handshake
    }

    @Test func aLiveIdleStreamOfThisProjectsProducerIsProbed() {
        var handshake = idleFollowerOf("p-1")
        #expect(handshake.checked(sentinel: "1", now: .now) == .probe)
        #expect(handshake.state == .probing)
    }

    @Test func aReferenceProducerIsNotProbed() {
        var handshake = idleFollowerOf(nil)
        #expect(handshake.checked(sentinel: "1", now: .now) == .none)
        #expect(handshake.state == .streaming)
    }

    @Test func theSameProducerOrNoAnswerGoesOnStreaming() {
        for answer in ["p-1", nil] as [String?] {
            var handshake = idleFollowerOf("p-1")
            _ = handshake.checked(sentinel: "1", now: .now)
            #expect(handshake.probed(producer: answer, answering: true) == .none)
            #expect(handshake.state == .streaming)
        }
    }

    @Test func anotherProducerMeansTheFollowedOneIsLost() {
        var handshake = idleFollowerOf("p-1")
        _ = handshake.checked(sentinel: "1", now: .now)
        #expect(handshake.probed(producer: "p-2", answering: true) == .finish(.failed(.producerLost(streamId: "s"))))
    }

    @Test func dataDuringTheProbeIsTakenAndTheProbeForgotten() {
        var handshake = idleFollowerOf("p-1")
        _ = handshake.checked(sentinel: "1", now: .now)
        #expect(handshake.received("more") == .append("more"))
        #expect(handshake.probed(producer: "p-2", answering: false) == .none)
        #expect(handshake.state == .streaming)
    }

    @Test func aProducerThatNoLongerAnswersTheListenerIsAskedAgain() {
        var handshake = idleFollowerOf("p-1")
        _ = handshake.checked(sentinel: "1", now: .now)
        #expect(handshake.probed(producer: "p-1", answering: false) == .requestAgain)
        #expect(handshake.state == .requested)
        #expect(handshake.hadGap)
    }

    @Test func theProbeRoundTripsOnTheWire() {
        let request = WireProtocol.encode(.probe(listenerId: "probe-1", about: "l-1"))
        #expect(WireProtocol.decodeRequest(request) == .probe(listenerId: "probe-1", about: "l-1"))
    }

    @Test func aProducerSaysWhetherItStillAnswersTheListener() {
        var listeners = ProducerListeners()
        _ = listeners.received(.resume(listenerId: "l-1", skip: 0, endReasons: true))
        #expect(listeners.received(.probe(listenerId: "p", about: "l-1")) == .identify(listenerId: "p", answering: true))
        listeners.listenerEnded("l-1")
        #expect(listeners.received(.probe(listenerId: "p", about: "l-1")) == .identify(listenerId: "p", answering: false))
    }
}
