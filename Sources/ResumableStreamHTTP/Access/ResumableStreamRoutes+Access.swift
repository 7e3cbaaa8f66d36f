import Hummingbird

extension ResumableStreamRoutes {
    /// Asks the configured access control whether the request may do `action` on its stream.
    /// Each route calls it first: a refused request costs no body read and no broker call.
    func authorize(_ action: StreamAction, _ request: Request, _ context: Context) async throws {
        guard let access = configuration.access else { return }
        try await access.authorize(action, stream: try streamId(context), request: request)
    }
}
