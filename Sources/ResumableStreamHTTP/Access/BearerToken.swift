import Hummingbird

/// Where a request carries its token: `Authorization: Bearer <token>`, or for reads only the
/// `access_token` query parameter, since a browser's `EventSource` cannot set headers. Writes do
/// not take it from the query: a URL ends up in logs, and a write token there could be replayed.
enum BearerToken {
    static func find(in request: Request, queryAllowed: Bool) throws(APIError) -> String {
        try find(
            authorization: request.headers[.authorization],
            query: request.uri.queryParameters.get("access_token"),
            queryAllowed: queryAllowed
        )
    }

    /// The header wins over the query.
    static func find(authorization: String?, query: String?, queryAllowed: Bool) throws(APIError) -> String {
        if let authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw .missingToken("the Authorization header is not 'Bearer <token>'")
            }
            let token = parts[1].trimmingCharacters(in: .whitespaces)
            guard !token.isEmpty else { throw .missingToken("the Authorization header holds no token") }
            return token
        }
        if let query, !query.isEmpty {
            guard queryAllowed else {
                throw .missingToken("a token in the access_token query parameter is taken for reads only; send it as Authorization: Bearer <token>")
            }
            return query
        }
        throw .missingToken(queryAllowed
            ? "this request needs a token: Authorization: Bearer <token>, or the access_token query parameter"
            : "this request needs a token: Authorization: Bearer <token>")
    }
}
