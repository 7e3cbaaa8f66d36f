import NIOCore
import Testing

@testable import Redis

@Suite("Reply matcher")
struct ReplyMatcherTests {
    private let timeout = TimeAmount.seconds(10)

    @Test func deliversRepliesToWaitersInTheOrderTheyCame() {
        var matcher = ReplyMatcher<Int>()
        for waiter in 0..<1000 {
            _ = matcher.enqueue(waiter, deadline: at(1000))
        }
        #expect(matcher.inFlight == 1000)
        for waiter in 0..<1000 {
            #expect(matcher.receive(.integer(waiter * 2)).outcome == .deliver(waiter, .integer(waiter * 2)))
        }
        #expect(matcher.inFlight == 0)
    }

    @Test func armsTheTimerOnlyForTheFirstWaiterOfAnEmptyQueue() {
        var matcher = ReplyMatcher<Int>()
        #expect(matcher.enqueue(1, deadline: at(100)).outcome == .send(armTimer: at(100)))
        #expect(matcher.enqueue(2, deadline: at(200)).outcome == .send(armTimer: nil))
        _ = matcher.receive(.status("OK"))
        #expect(matcher.enqueue(3, deadline: at(300)).outcome == .send(armTimer: nil))
        _ = matcher.receive(.status("OK"))
        _ = matcher.receive(.status("OK"))
        #expect(matcher.enqueue(4, deadline: at(400)).outcome == .send(armTimer: at(400)))
    }

    @Test func aReplyNobodyWaitsForIsUnexpected() {
        var matcher = ReplyMatcher<Int>()
        #expect(matcher.receive(.status("OK")).outcome == .unexpectedReply)
    }

    @Test func timerBeforeTheHeadsDeadlineRearmsForIt() {
        var matcher = ReplyMatcher<Int>()
        _ = matcher.enqueue(1, deadline: at(100))
        _ = matcher.enqueue(2, deadline: at(50))
        #expect(matcher.timerFired(now: at(99), timeout: timeout).outcome == .rearm(at(100)))
        #expect(matcher.inFlight == 2)
    }

    @Test func timerRearmsForTheNewHeadAfterTheOldOneWasAnswered() {
        var matcher = ReplyMatcher<Int>()
        _ = matcher.enqueue(1, deadline: at(100))
        _ = matcher.enqueue(2, deadline: at(200))
        _ = matcher.receive(.status("OK"))
        #expect(matcher.timerFired(now: at(100), timeout: timeout).outcome == .rearm(at(200)))
    }

    @Test func timerWithNothingWaitingStaysOff() {
        var matcher = ReplyMatcher<Int>()
        #expect(matcher.timerFired(now: at(100), timeout: timeout).outcome == .rearm(nil))
    }

    @Test func timerAfterTheHeadsDeadlineFailsEveryWaiterInOrder() {
        var matcher = ReplyMatcher<Int>()
        _ = matcher.enqueue(1, deadline: at(100))
        _ = matcher.enqueue(2, deadline: at(200))
        _ = matcher.enqueue(3, deadline: at(300))
        #expect(matcher.timerFired(now: at(101), timeout: timeout).outcome == .timeout([1, 2, 3], .commandTimeout(timeout)))
        #expect(matcher.inFlight == 0)
    }

    @Test func nothingIsSentAfterATimeout() {
        var matcher = ReplyMatcher<Int>()
        _ = matcher.enqueue(1, deadline: at(100))
        _ = matcher.timerFired(now: at(101), timeout: timeout)
        #expect(matcher.enqueue(2, deadline: at(1000)).outcome == .notSent)
        #expect(matcher.inFlight == 0)
    }

    @Test func closeReturnsEveryWaiterInOrder() {
        var matcher = ReplyMatcher<Int>()
        for waiter in [5, 3, 9] {
            _ = matcher.enqueue(waiter, deadline: at(100))
        }
        #expect(matcher.close() == [5, 3, 9])
        #expect(matcher.inFlight == 0)
    }

    @Test func nothingIsSentAfterClose() {
        var matcher = ReplyMatcher<Int>()
        _ = matcher.close()
        #expect(matcher.enqueue(1, deadline: at(100)).outcome == .notSent)
        #expect(matcher.close() == [])
    }

    @Test func aCancelledCommandsReplyIsDroppedAndTheNextOnesStillReachTheirCallers() {
        var matcher = ReplyMatcher<Int>()
        for waiter in 1...4 {
            _ = matcher.enqueue(waiter, id: UInt64(waiter), deadline: at(100))
        }
        #expect(matcher.cancel(id: 2) == 2)
        #expect(matcher.cancel(id: 4) == 4)
        #expect(matcher.inFlight == 4)
        #expect(matcher.receive(.integer(1)).outcome == .deliver(1, .integer(1)))
        #expect(matcher.receive(.integer(2)).outcome == .drop)
        #expect(matcher.receive(.integer(3)).outcome == .deliver(3, .integer(3)))
        #expect(matcher.receive(.integer(4)).outcome == .drop)
        #expect(matcher.receive(.integer(5)).outcome == .unexpectedReply)
    }

    @Test func aCommandIsCancelledAtMostOnceAndNotAfterItsReply() {
        var matcher = ReplyMatcher<Int>()
        _ = matcher.enqueue(1, id: 1, deadline: at(100))
        _ = matcher.enqueue(2, id: 2, deadline: at(100))
        #expect(matcher.cancel(id: 2) == 2)
        #expect(matcher.cancel(id: 2) == nil)
        _ = matcher.receive(.integer(1))
        #expect(matcher.cancel(id: 1) == nil)
        #expect(matcher.cancel(id: 99) == nil)
    }

    @Test func commandsWithoutAnIdCannotBeCancelled() {
        var matcher = ReplyMatcher<Int>()
        _ = matcher.enqueue(1, deadline: at(100))
        #expect(matcher.cancel(id: 0) == nil)
        #expect(matcher.receive(.integer(1)).outcome == .deliver(1, .integer(1)))
    }

    @Test func aCommandWhoseCallerLeftBeforeItWasWrittenHoldsItsReplysPlace() {
        var matcher = ReplyMatcher<Int>()
        _ = matcher.enqueue(nil, id: 1, deadline: at(100))
        _ = matcher.enqueue(2, id: 2, deadline: at(100))
        #expect(matcher.receive(.integer(1)).outcome == .drop)
        #expect(matcher.receive(.integer(2)).outcome == .deliver(2, .integer(2)))
    }

    @Test func aCancelledHeadStillTimesOutButOnlyWaitersAreFailed() {
        var matcher = ReplyMatcher<Int>()
        _ = matcher.enqueue(1, id: 1, deadline: at(100))
        _ = matcher.enqueue(2, id: 2, deadline: at(200))
        _ = matcher.cancel(id: 1)
        #expect(matcher.timerFired(now: at(101), timeout: timeout).outcome == .timeout([2], .commandTimeout(timeout)))
    }

    @Test func closeFailsOnlyTheCallersStillWaiting() {
        var matcher = ReplyMatcher<Int>()
        for waiter in 1...3 {
            _ = matcher.enqueue(waiter, id: UInt64(waiter), deadline: at(100))
        }
        _ = matcher.cancel(id: 2)
        #expect(matcher.close() == [1, 3])
    }

    private func at(_ nanoseconds: UInt64) -> NIODeadline {
        .uptimeNanoseconds(nanoseconds)
    }
}

/// Equatable mirrors of the matcher's actions, so that tests can compare them whole.
private enum EnqueueOutcome: Equatable {
    case send(armTimer: NIODeadline?)
    case notSent
}

private enum ReceiveOutcome: Equatable {
    case deliver(Int, RedisReply)
    case drop
    case unexpectedReply
}

private enum TimerOutcome: Equatable {
    case rearm(NIODeadline?)
    case timeout([Int], RedisConnectionError)
}

extension ReplyMatcher.EnqueueAction {
    fileprivate var outcome: EnqueueOutcome {
        switch self {
        case .send(let deadline): .send(armTimer: deadline)
        case .notSent: .notSent
        }
    }
}

extension ReplyMatcher.ReceiveAction where Waiter == Int {
    fileprivate var outcome: ReceiveOutcome {
        switch self {
        case .deliver(let waiter, let reply): .deliver(waiter, reply)
        case .drop: .drop
        case .unexpectedReply: .unexpectedReply
        }
    }
}

extension ReplyMatcher.TimerAction where Waiter == Int {
    fileprivate var outcome: TimerOutcome {
        switch self {
        case .rearm(let deadline): .rearm(deadline)
        case .timeout(let waiters, let error): .timeout(waiters, error)
        }
    }
}
