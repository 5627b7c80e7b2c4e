// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "alertd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "alertd", targets: ["alertd"]),
        .library(name: "AlertdKit", targets: ["AlertdKit"]),
        .library(name: "AlertdPostgres", targets: ["AlertdPostgres"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The C libraries chosen by the product's owner, found through pkg-config.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"]), .brew(["curl"])]
        ),
        .systemLibrary(
            name: "CESMTP",
            pkgConfig: "libesmtp-1.0",
            providers: [.apt(["libesmtp-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl"])]
        ),
        // Typed one-line wrappers for what Swift cannot call: variadic functions and macros.
        .target(
            name: "CAlertdShims",
            dependencies: ["CCurl", "CESMTP"]
        ),
        // Threads for blocking C calls, backoff, secret redaction: shared by every module.
        .target(
            name: "AlertdSupport",
            dependencies: []
        ),
        .target(
            name: "AlertdPostgres",
            dependencies: [
                "CLibPQ",
                "AlertdSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "AlertdKit",
            dependencies: [
                "AlertdPostgres",
                "AlertdSupport",
                "CAlertdShims",
                "CCurl",
                "CESMTP",
                "COpenSSL",
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // alertd bench: its own PostgreSQL, webhook receiver and SMTP sink, and alertd measured end to end.
        .target(
            name: "AlertdBench",
            dependencies: [
                "AlertdKit",
                "AlertdPostgres",
                "AlertdSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "alertd",
            dependencies: [
                "AlertdKit",
                "CAlertdShims",
                "COpenSSL",
                "AlertdBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Real servers for the tests: throwaway databases on the cluster deploy/dev/pg.sh starts.
        .target(
            name: "AlertdTestSupport",
            dependencies: [
                "AlertdKit",
                "AlertdPostgres",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The fault suite: real alertd processes through crashes, restarts and outages.
        .executableTarget(
            name: "alertd-faults",
            dependencies: [
                "AlertdKit",
                "AlertdSupport",
                "AlertdPostgres",
                "AlertdTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "AlertdSupportTests",
            dependencies: ["AlertdSupport"]
        ),
        .testTarget(
            name: "AlertdPostgresTests",
            dependencies: ["AlertdPostgres", "AlertdSupport", "AlertdTestSupport", "CLibPQ"]
        ),
        .testTarget(
            name: "AlertdKitTests",
            dependencies: ["AlertdKit", "AlertdBench", "AlertdPostgres", "AlertdSupport", "AlertdTestSupport", "CAlertdShims", "CCurl", "CESMTP"],
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
