import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ResumableStreamHTTP

/// The files of `Public/` (the demo page, the browser client, the OpenAPI document), embedded in
/// the binary at build time and decoded once at start: `/` serves `index.html`, every other file
/// is served under its own name. Each carries a strong `ETag`, so a browser revalidates with one
/// `304` instead of downloading it again.
struct WebAssets: Sendable {
    struct Asset: Sendable {
        let body: ByteBuffer
        let contentType: String
        let etag: String
    }

    /// By request path.
    let assets: [String: Asset]

    init() {
        var assets: [String: Asset] = [:]
        for (name, base64) in EmbeddedAssets.base64 {
            // The build wrote this base64 itself: a file that does not decode is not served
            // rather than served wrong.
            guard let bytes = Data(base64Encoded: base64) else { continue }
            let path = name == "index.html" ? "/" : "/\(name)"
            assets[path] = Asset(body: ByteBuffer(bytes: bytes), contentType: Self.contentType(of: name), etag: Self.etag(of: bytes))
        }
        self.assets = assets
    }

    func addRoutes(to router: Router<StreamRequestContext>) {
        for (path, asset) in assets {
            router.get(RouterPath(path)) { request, _ in
                Self.response(asset, request: request, path: path)
            }
            router.refuseOtherMethods(RouterPath(path), allowing: [.get])
        }
    }

    static func response(_ asset: Asset, request: Request, path: String) -> Response {
        var headers: HTTPFields = [
            .eTag: asset.etag,
            // Revalidated on every load: a deploy shows its new page at once, for one 304.
            .cacheControl: "no-cache",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ]
        if path == "/" {
            // The page loads its script and style from this origin only and talks to it alone.
            headers[HTTPField.Name("Content-Security-Policy")!] =
                "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
        }
        if let tags = request.headers[.ifNoneMatch], tags.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == asset.etag || $0.trimmingCharacters(in: .whitespaces) == "*" }) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = asset.contentType
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: asset.body))
    }

    static func contentType(of name: String) -> String {
        switch name.split(separator: ".").last {
        case "html": return "text/html; charset=utf-8"
        case "js": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "yaml": return "application/yaml; charset=utf-8"
        case "json": return "application/json; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        default: return "application/octet-stream"
        }
    }

    /// A strong validator: FNV-1a over the bytes, which is plenty to tell two builds' files apart.
    static func etag(of bytes: Data) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return "\"\(String(hash, radix: 16))\""
    }
}
