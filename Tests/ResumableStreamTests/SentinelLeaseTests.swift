@testable import ResumableStream
import Testing

struct SentinelLeaseTests {
    private let t0 = ContinuousClock.now

    @Test func aNewLeaseIsRenewedAfterAThird() {
        let lease = SentinelLease(lease: .seconds(15), now: t0)
        #expect(lease.nextRenewal == t0 + .seconds(5))
        #expect(!lease.isDue(now: t0 + .milliseconds(4999)))
        #expect(lease.isDue(now: t0 + .seconds(5)))
    }

    @Test func aRenewalMovesTheNextOneAThirdLater() {
        var lease = SentinelLease(lease: .seconds(15), now: t0)
        lease.renewed(at: t0 + .seconds(5), stillLive: true)
        #expect(lease.nextRenewal == t0 + .seconds(10))
        #expect(lease.confirmed == t0 + .seconds(5))
    }

    @Test func aFailedRenewalIsTriedAgainSoon() {
        var lease = SentinelLease(lease: .seconds(15), now: t0)
        lease.renewalFailed(at: t0 + .seconds(5))
        #expect(lease.nextRenewal == t0 + .seconds(6))
        #expect(!lease.mayHaveLapsed(now: t0 + .seconds(6)))
    }

    @Test func aShortLeaseRetriesWithinItself() {
        var lease = SentinelLease(lease: .seconds(3), now: t0)
        lease.renewalFailed(at: t0 + .seconds(1))
        #expect(lease.nextRenewal == t0 + .milliseconds(1500))
    }

    @Test func aLeaseNotConfirmedForItsLengthMayHaveLapsed() {
        var lease = SentinelLease(lease: .seconds(15), now: t0)
        lease.renewalFailed(at: t0 + .seconds(5))
        lease.renewalFailed(at: t0 + .seconds(10))
        #expect(!lease.mayHaveLapsed(now: t0 + .seconds(14)))
        #expect(lease.mayHaveLapsed(now: t0 + .seconds(15)))
        lease.renewed(at: t0 + .seconds(16), stillLive: true)
        #expect(!lease.mayHaveLapsed(now: t0 + .seconds(16)))
    }

    @Test func aGapMakesTheRenewalDueAtOnce() {
        var lease = SentinelLease(lease: .seconds(15), now: t0)
        lease.brokerGap(at: t0 + .seconds(1))
        #expect(lease.isDue(now: t0 + .seconds(1)))
        lease.renewed(at: t0 + .seconds(1), stillLive: true)
        #expect(lease.nextRenewal == t0 + .seconds(6))
    }

    @Test func aDoneSentinelEndsTheRenewals() {
        var lease = SentinelLease(lease: .seconds(15), now: t0)
        lease.renewed(at: t0 + .seconds(5), stillLive: false)
        #expect(lease.ended)
        #expect(!lease.isDue(now: t0 + .seconds(60)))
        lease.brokerGap(at: t0 + .seconds(61))
        #expect(!lease.isDue(now: t0 + .seconds(61)))
    }
}
