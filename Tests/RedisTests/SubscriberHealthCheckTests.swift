import NIOCore
import Testing

@testable import Redis

@Suite("Subscriber health check")
struct SubscriberHealthCheckTests {
    /// PING 2 s after the last answer; an answer may take 1 s.
    private func check() -> SubscriberHealthCheck {
        SubscriberHealthCheck(interval: .seconds(2), timeout: .seconds(1))
    }

    @Test func pingsAnIntervalAfterConnectingAndAgainAnIntervalAfterEachAnswer() {
        var check = check()
        #expect(check.connected(now: at(0)) == .arm(at(2000)))
        #expect(check.timerFired(now: at(2000)) == .sendPing(thenArm: at(3000)))
        #expect(check.pongReceived(now: at(2300)) == .arm(at(4300)))
        #expect(check.timerFired(now: at(4300)) == .sendPing(thenArm: at(5300)))
        #expect(check.pongReceived(now: at(5299)) == .arm(at(7299)))
    }

    @Test func aPingNotAnsweredInTimeClosesTheConnection() {
        var check = check()
        _ = check.connected(now: at(0))
        _ = check.timerFired(now: at(2000))
        #expect(check.timerFired(now: at(3000)) == .closeConnection)
        // Nothing more until the next connection.
        #expect(check.timerFired(now: at(9000)) == .none)
        #expect(check.pongReceived(now: at(9000)) == .none)
    }

    @Test func aTimerThatFiresEarlyIsRearmedForTheSameDeadline() {
        var check = check()
        _ = check.connected(now: at(0))
        #expect(check.timerFired(now: at(1999)) == .arm(at(2000)))
        _ = check.timerFired(now: at(2000))
        #expect(check.timerFired(now: at(2999)) == .arm(at(3000)))
        #expect(check.timerFired(now: at(3000)) == .closeConnection)
    }

    @Test func anAnswerNobodyWaitsForChangesNothing() {
        var check = check()
        #expect(check.pongReceived(now: at(0)) == .none)
        _ = check.connected(now: at(0))
        #expect(check.pongReceived(now: at(500)) == .none)
        #expect(check.timerFired(now: at(2000)) == .sendPing(thenArm: at(3000)))
    }

    @Test func aLostConnectionStopsTheCheckAndANewOneStartsItAfresh() {
        var check = check()
        _ = check.connected(now: at(0))
        _ = check.timerFired(now: at(2000))
        check.disconnected()
        #expect(check.timerFired(now: at(3000)) == .none)
        #expect(check.pongReceived(now: at(3000)) == .none)
        #expect(check.connected(now: at(5000)) == .arm(at(7000)))
        #expect(check.timerFired(now: at(7000)) == .sendPing(thenArm: at(8000)))
    }

    @Test func anIntervalOfZeroTurnsTheCheckOff() {
        var check = SubscriberHealthCheck(interval: .zero, timeout: .seconds(1))
        #expect(!check.isEnabled)
        #expect(check.connected(now: at(0)) == .none)
        #expect(check.timerFired(now: at(10_000)) == .none)
    }

    private func at(_ milliseconds: Int64) -> NIODeadline {
        .uptimeNanoseconds(UInt64(1_000_000_000 + milliseconds * 1_000_000))
    }
}
