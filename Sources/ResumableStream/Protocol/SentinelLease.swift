/// When a producer renews the lease on its stream's sentinel. A value type that does no I/O: the
/// producer asks it what is due with the current time and tells it how each renewal went.
///
/// The sentinel is created with an expiry of one lease and renewed every third of it, so that two
/// renewals may fail (Redis paused, a connection being re-opened) before it lapses. A renewal that
/// fails is tried again soon rather than a third later. A gap in the producer's subscription means
/// Redis may have lost its state (it restarted empty): the sentinel is re-asserted at once, so that
/// the stream is joinable again as soon as Redis is back, not a third of a lease later.
struct SentinelLease {
    typealias Instant = ContinuousClock.Instant

    let lease: Duration
    /// A third of the lease: how often a healthy producer renews.
    let interval: Duration
    /// How soon a renewal that failed is tried again.
    let retryInterval: Duration
    /// When the next renewal is due.
    private(set) var nextRenewal: Instant
    /// When Redis last confirmed the lease (at the claim, then at each renewal).
    private(set) var confirmed: Instant
    /// The sentinel said `DONE`: someone else finished the stream; renewing stops.
    private(set) var ended = false

    /// A lease whose sentinel was created (with its expiry) at `now`.
    init(lease: Duration, now: Instant) {
        self.lease = lease
        self.interval = lease / 3
        self.retryInterval = min(.seconds(1), lease / 6)
        self.nextRenewal = now + interval
        self.confirmed = now
    }

    func isDue(now: Instant) -> Bool {
        !ended && now >= nextRenewal
    }

    /// Redis renewed (or re-created) the sentinel; `stillLive` is false when it holds `DONE`.
    mutating func renewed(at now: Instant, stillLive: Bool) {
        confirmed = now
        nextRenewal = now + interval
        if !stillLive { ended = true }
    }

    mutating func renewalFailed(at now: Instant) {
        nextRenewal = now + retryInterval
    }

    /// The producer's subscription had a gap: Redis may have restarted empty. Renew at once.
    mutating func brokerGap(at now: Instant) {
        nextRenewal = now
    }

    /// No renewal was confirmed for a whole lease: the sentinel may have expired and the id may
    /// have been claimed again elsewhere.
    func mayHaveLapsed(now: Instant) -> Bool {
        now - confirmed >= lease
    }
}
