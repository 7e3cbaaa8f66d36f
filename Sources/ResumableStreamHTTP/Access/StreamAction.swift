/// What a request does to a stream, as access control sees it:
///
/// | Request | Action |
/// |---|---|
/// | `POST /streams/{id}` | `create` |
/// | `POST /streams/{id}/ingest` (new, or continued with `Stream-Offset`) | `ingest` |
/// | `DELETE /streams/{id}` | `cancel` |
/// | `GET /streams/{id}`, `HEAD /streams/{id}`, `GET /streams/{id}/status` | `read` |
public enum StreamAction: String, Codable, Sendable, CaseIterable {
    case create
    case ingest
    case cancel
    case read

    /// Creating, ingesting and cancelling change a stream; reading does not.
    public var isWrite: Bool { self != .read }
}
