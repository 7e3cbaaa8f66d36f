import AsyncHTTPClient
import Testing

/// The server's embedded web assets: the demo page at `/`, the browser client and the OpenAPI
/// document under their names, each with its type, a validator that a browser revalidates with,
/// and `HEAD` as `GET` without the body.
@Suite(.timeLimit(.minutes(2)))
struct WebAssetsTests {
    @Test func theAssetsAreServedWithTheirTypeAndValidator() async throws {
        try await withServers(1, redis: false) { servers in
            let base = servers[0].base
            let page = try await Client.send(Client.request(.GET, base + "/"))
            let html = String(buffer: try await page.body.collect(upTo: 1 << 20))
            #expect(page.status == .ok)
            #expect(page.headers.first(name: "Content-Type") == "text/html; charset=utf-8")
            #expect(page.headers.first(name: "Content-Security-Policy")?.hasPrefix("default-src 'self'") == true)
            #expect(html.contains("/demo.js"))
            let etag = try #require(page.headers.first(name: "ETag"))

            let again = try await Client.send(Client.request(.GET, base + "/", headers: [("If-None-Match", etag)]))
            #expect(again.status == .notModified)
            #expect(try await again.body.collect(upTo: 1 << 20).readableBytes == 0)
            let changed = try await Client.send(Client.request(.GET, base + "/", headers: [("If-None-Match", #""another""#)]))
            #expect(changed.status == .ok)

            let head = try await Client.send(Client.request(.HEAD, base + "/"))
            #expect(head.status == .ok)
            #expect(head.headers.first(name: "ETag") == etag)
            #expect(head.headers.first(name: "Content-Length") == String(html.utf8.count))
            #expect(try await head.body.collect(upTo: 1 << 20).readableBytes == 0)

            for (path, type) in [("/client.js", "text/javascript; charset=utf-8"), ("/demo.js", "text/javascript; charset=utf-8"),
                                 ("/demo.css", "text/css; charset=utf-8"), ("/openapi.yaml", "application/yaml; charset=utf-8")] {
                let asset = try await Client.send(Client.request(.GET, base + path))
                #expect(asset.status == .ok, "\(path)")
                #expect(asset.headers.first(name: "Content-Type") == type, "\(path)")
                #expect(asset.headers.first(name: "X-Content-Type-Options") == "nosniff", "\(path)")
                #expect(try await asset.body.collect(upTo: 1 << 21).readableBytes > 0, "\(path)")
            }
            // Every GET-only path answers HEAD the same way.
            let health = try await Client.send(Client.request(.HEAD, base + "/healthz"))
            #expect(health.status == .ok)
        }
    }
}
