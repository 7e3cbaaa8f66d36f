import Hummingbird
import Prometheus
import ResumableStream

/// `/metrics` in Prometheus's text format: what swift-metrics recorded into the registry, and the
/// coordinator's state, read when scraped.
struct MetricsExporter: Sendable {
    let registry: PrometheusCollectorRegistry
    let context: ResumableStreamContext
    private let producing: Gauge
    private let replaying: Gauge
    private let following: Gauge
    private let buffered: Gauge

    init(registry: PrometheusCollectorRegistry, context: ResumableStreamContext) {
        self.registry = registry
        self.context = context
        func gauge(_ name: String, unit: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "resumable_stream", metricName: name, unitName: unit, helpText: help))
        }
        producing = gauge("producing", unit: "streams", "Streams whose source this instance runs")
        replaying = gauge("replaying", unit: "streams", "Finished streams this instance still answers, in their replay grace")
        following = gauge("following", unit: "streams", "Streams this instance follows for its readers")
        buffered = gauge("buffered", unit: "bytes", "Bytes held by the stream buffers of this instance")
    }

    func response() -> Response {
        let streams = context.activeStreams
        producing.set(Double(streams.producing))
        replaying.set(Double(streams.replaying))
        following.set(Double(streams.following))
        buffered.set(Double(context.bufferedBytes))
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer()))
        )
    }
}
