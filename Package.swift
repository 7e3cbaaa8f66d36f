// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "swift-resumable-stream",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Redis", targets: ["Redis"]),
        .library(name: "ResumableStream", targets: ["ResumableStream"]),
        .library(name: "ResumableStreamHTTP", targets: ["ResumableStreamHTTP"]),
        .library(name: "ResumableStreamServer", targets: ["ResumableStreamServer"]),
        .executable(name: "resumable-stream-server", targets: ["ResumableStreamServerMain"]),
        .executable(name: "RedisBenchmark", targets: ["RedisBenchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        // Without its default traits Hummingbird does not pull in swift-configuration, which the
        // server does not use: it reads flags and environment through swift-argument-parser.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        // The HTTP parts (`HTTPRequestPart`) that Hummingbird's channel handlers see.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Bearer tokens for write (and optionally read) access: HS256, RS256 and ES256 checked by
        // a maintained library rather than by crypto of our own.
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
    ],
    targets: [
        // The only C in the project: hiredis, plus a header of inline functions that hide the
        // differences between hiredis 0.14 and 1.x. No `pkgConfig:` here: hiredis's .pc file adds
        // -D_FILE_OFFSET_BITS=64, which SwiftPM refuses with a warning. scripts/swift-with-hiredis
        // asks pkg-config where hiredis lives and passes its include and library paths instead.
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .systemLibrary(name: "CMalloc"),
        .target(
            name: "Redis",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // TLS to Redis (rediss://).
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The client's async methods run on their caller's executor: a caller on the
            // connection's event loop then sends and resumes there, with no thread hop.
            swiftSettings: [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        .target(
            name: "ResumableStream",
            dependencies: [
                "Redis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                // The context is a Service: its run() owns every producer and mirror.
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The HTTP layer: routes any Hummingbird application can mount, and the sources they offer.
        .target(
            name: "ResumableStreamHTTP",
            dependencies: [
                "ResumableStream",
                // Its task executor on an event loop: stream responses are written on theirs.
                "Redis",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        // The service: configuration, broker choice, metrics and lifecycle around the routes.
        .target(
            name: "ResumableStreamServer",
            dependencies: [
                "CMalloc",
                "ResumableStreamHTTP",
                "ResumableStream",
                "Redis",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            // The demo page, the browser client and the OpenAPI document, embedded in the binary
            // by the EmbedAssets plugin.
            exclude: ["Public"],
            plugins: ["EmbedAssets"]
        ),
        // The plugin's tool: writes a target's Public/ files into a Swift source file.
        .executableTarget(name: "EmbedAssetsTool"),
        .plugin(name: "EmbedAssets", capability: .buildTool(), dependencies: ["EmbedAssetsTool"]),
        .executableTarget(
            name: "ResumableStreamServerMain",
            dependencies: [
                "ResumableStreamServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "RedisBenchmark",
            dependencies: [
                "Redis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ResumableStreamHTTPTests",
            dependencies: [
                "ResumableStreamHTTP",
                "ResumableStreamServer",
                "ResumableStream",
                "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                // Tokens signed as an issuer would sign them.
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Faults injected into real processes: a redis-server of each test's own and instances of
        // the resumable-stream-server executable, which scripts/test builds first.
        .testTarget(
            name: "FaultTests",
            dependencies: [
                // The throwaway CA and the TLS-only redis-server.
                "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // What both test targets share.
        .target(name: "TestSupport", dependencies: ["Redis"], path: "Tests/TestSupport"),
        .testTarget(
            name: "ResumableStreamTests",
            dependencies: [
                "ResumableStream",
                "TestSupport",
                "Redis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "RedisTests",
            dependencies: [
                "Redis",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
