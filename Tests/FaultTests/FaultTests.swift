import Testing

/// Faults injected for real into real processes on 127.0.0.1: a redis-server of each test's own,
/// paused (SIGSTOP), killed (SIGKILL) and restarted empty; instances of the server executable,
/// killed or stopped with SIGTERM; clients that send nothing or trickle. Each test runs alone
/// (`.serialized`), so that its time bounds measure the service, not the suite's own crowding.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct FaultTests {
    /// `--broker-timeout-ms` of the instances (``ServerOptions``), and what a refusal for want of
    /// the broker may take: the timeout and a margin for a loaded machine.
    static let brokerTimeout = Duration.milliseconds(ServerOptions().brokerTimeoutMs)
    static let answerBound = brokerTimeout + .seconds(1)
    /// `--lease-seconds`: how long a live sentinel outlives a producer that stopped renewing it.
    static let lease = Duration.seconds(ServerOptions().leaseSeconds)
    /// How long a follower may wait to learn that its producer died: an idle follower checks on
    /// its producer every 5 s (the coordinator's watchdog, which no flag sets), and gives it a lease
    /// and an acknowledgement timeout to come back; then a margin.
    static let followerEndBound = Duration.seconds(5 * 2) + lease + .milliseconds(ServerOptions().ackTimeoutMs) + .seconds(2)
}
