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
        // Typed one-line wrappers for what Swift cannot call: variadic functions and macros.
        .target(
            name: "CAlertdShims",
            dependencies: ["CCurl", "CESMTP"]
        ),
        .target(
            name: "AlertdPostgres",
            dependencies: [
                "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "AlertdKit",
            dependencies: [
                "AlertdPostgres",
                "CAlertdShims",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "alertd",
            dependencies: [
                "AlertdKit",
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
        .testTarget(
            name: "AlertdPostgresTests",
            dependencies: ["AlertdPostgres", "AlertdTestSupport"]
        ),
        .testTarget(
            name: "AlertdKitTests",
            dependencies: ["AlertdKit", "AlertdPostgres", "AlertdTestSupport", "CAlertdShims", "CCurl", "CESMTP"],
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
