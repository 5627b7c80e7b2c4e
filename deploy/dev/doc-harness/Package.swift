// swift-tools-version:6.0
// Builds the Swift verifier of docs/webhooks.md, as written there, with its harness.
import PackageDescription

let package = Package(
    name: "verify",
    dependencies: [.package(url: "https://github.com/apple/swift-crypto", from: "3.12.3")],
    targets: [.executableTarget(name: "verify", dependencies: [.product(name: "Crypto", package: "swift-crypto")])]
)
