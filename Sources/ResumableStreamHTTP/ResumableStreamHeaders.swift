import HTTPTypes

/// The headers this API adds to HTTP.
public enum ResumableStreamHeaders {
    /// `none`, `live`, `finished`, or `failed` (on `HEAD`, and on errors about a stream).
    public static var streamState: HTTPField.Name { HTTPField.Name("Stream-State")! }
    /// The stream's length in offset units: where a reader at the end, or an ingest that goes on
    /// with the stream, continues.
    public static var streamLength: HTTPField.Name { HTTPField.Name("Stream-Length")! }
    /// A failed stream's error code, as its `end` event carries it.
    public static var streamError: HTTPField.Name { HTTPField.Name("Stream-Error")! }
    /// On an ingest: where its body goes on in the stream (a durable stream that lost its producer).
    public static var streamOffset: HTTPField.Name { HTTPField.Name("Stream-Offset")! }
}
