import ResumableStream

/// An ingest's body as a source: a body that breaks off before its end (the client's connection
/// went away) throws ``SourceDetached``, so that a durable stream waits for the client to go on
/// with it from another connection, on any instance, rather than fail.
struct IngestBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == String {
    typealias Element = String
    let base: Base

    init(_ base: Base) {
        self.base = base
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator

        mutating func next() async throws -> String? {
            do {
                return try await base.next()
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw SourceDetached("the ingest's body broke off: \(error)")
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator())
    }
}
