import AsyncHTTPClient
import Foundation
import NIOHTTP1

/// A whole answer: its status, headers and JSON body (empty when it has none).
struct Answer {
    let status: Int
    let headers: HTTPHeaders
    let object: [String: Any]

    var error: String? { object["error"] as? String }

    func header(_ name: String) -> String? { headers.first(name: name) }

    /// `headers` plus `Authorization: Bearer <token>` when there is a token.
    static func send(_ method: HTTPMethod, _ url: String, token: String? = nil, body: String? = nil, headers: [(String, String)] = []) async throws -> Answer {
        let response = try await Client.send(Client.request(method, url, body: body, headers: headers + bearer(token)))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
        return Answer(status: Int(response.status.code), headers: response.headers, object: object)
    }

    static func bearer(_ token: String?) -> [(String, String)] {
        token.map { [("Authorization", "Bearer \($0)")] } ?? []
    }
}
