/// The producer's side of the protocol: which resume requests it answers, and when it stops.
///
/// The producer answers requests while its source runs and, for the replay grace, after it ended;
/// then it marks the sentinel `DONE` and stops listening. A value type that does no I/O.
struct ProducerListeners {
    enum Phase: Equatable {
        case producing
        /// The source ended; requests are still answered with the whole stream.
        case replaying
        case closed
    }

    private(set) var phase = Phase.producing
    private(set) var listeners: Set<String> = []

    enum RequestAction: Equatable {
        /// Answer this listener: the text from `skip`, then every new chunk, then the end.
        case answer(listenerId: String, skip: Int, endReasons: Bool)
        /// Stop the source (the stream was cancelled), or end the replay grace if it has ended.
        case cancel
        /// Tell this listener which producer this is, and whether it still answers the listener
        /// the probe was about.
        case identify(listenerId: String, answering: Bool)
        case ignore
    }

    mutating func received(_ request: WireProtocol.Request) -> RequestAction {
        guard phase != .closed else { return .ignore }
        switch request {
        case .cancel:
            // While replaying, a cancel ends the replay grace at once.
            return .cancel
        case .resume(let listenerId, let skip, let endReasons):
            // A repeated request of a listener that is being answered would send its text twice.
            guard listeners.insert(listenerId).inserted else { return .ignore }
            return .answer(listenerId: listenerId, skip: skip, endReasons: endReasons)
        case .probe(let listenerId, let about):
            return .identify(listenerId: listenerId, answering: listeners.contains(about))
        }
    }

    mutating func listenerEnded(_ listenerId: String) {
        listeners.remove(listenerId)
    }

    mutating func sourceEnded() {
        if phase == .producing { phase = .replaying }
    }

    /// The grace is over: the caller marks the sentinel `DONE` and unsubscribes.
    mutating func close() {
        phase = .closed
    }
}
