// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swift-resumable-stream",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Redis", targets: ["Redis"]),
        .library(name: "ResumableStream", targets: ["ResumableStream"]),
        .library(name: "ResumableStreamHTTP", targets: ["ResumableStreamHTTP"]),
        .executable(name: "RedisBenchmark", targets: ["RedisBenchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
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
        .target(
            name: "Redis",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
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
            ]
        ),
        // The HTTP layer (issue: the SSE service); so far its event-stream writer.
        .target(
            name: "ResumableStreamHTTP",
            dependencies: [
                "ResumableStream",
                .product(name: "NIOCore", package: "swift-nio"),
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
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // What both test targets share.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(
            name: "ResumableStreamTests",
            dependencies: [
                "ResumableStream",
                "TestSupport",
                "Redis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
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
