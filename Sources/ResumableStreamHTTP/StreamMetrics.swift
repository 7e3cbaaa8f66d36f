import Metrics
import Synchronization

/// The HTTP layer's own metrics (swift-metrics; the server exports them for Prometheus), and its
/// count of concurrent readers, which the reader limit checks.
final class StreamMetrics: Sendable {
    private let created = Counter(label: "resumable_stream_created_total")
    private let readersGauge = Meter(label: "resumable_stream_readers")
    private let bytesSent = Counter(label: "resumable_stream_sent_bytes_total")
    private let readers = Atomic<Int>(0)
    private let sentTotal = Atomic<Int>(0)

    init() {}

    func streamCreated() {
        created.increment()
    }

    func sent(bytes: Int) {
        bytesSent.increment(by: bytes)
        sentTotal.wrappingAdd(bytes, ordering: .relaxed)
    }

    /// Bytes handed to clients' connections so far.
    var sentBytes: Int { sentTotal.load(ordering: .relaxed) }

    func refused(_ error: APIError) {
        Counter(label: "resumable_stream_refused_total", dimensions: [("error", error.code)]).increment()
    }

    /// A slot for one more reader, or `nil` when `limit` readers are reading.
    func takeReaderSlot(limit: Int) -> ReaderSlot? {
        let count = readers.wrappingAdd(1, ordering: .relaxed).newValue
        guard count <= limit else {
            readers.wrappingSubtract(1, ordering: .relaxed)
            return nil
        }
        readersGauge.increment()
        return ReaderSlot { [self] in
            readers.wrappingSubtract(1, ordering: .relaxed)
            readersGauge.decrement()
        }
    }

    /// The readers reading now.
    var activeReaders: Int { readers.load(ordering: .relaxed) }
}
