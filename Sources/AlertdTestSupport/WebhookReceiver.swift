import Foundation

/// The real HTTP server `deploy/dev/webhook-receiver.py`, started for one test.
public final class WebhookReceiver: Sendable {
    private let server: ScriptedServer
    private let scheme: String

    private init(server: ScriptedServer, scheme: String) {
        self.server = server
        self.scheme = scheme
    }

    /// A request the receiver got.
    public struct Request: Sendable, Decodable {
        public let time: Double
        public let method: String
        public let path: String
        public let headers: [String: String]
        public let body: String
        /// Whether the request verified with every secret the receiver was given; nil when it was
        /// given none.
        public let signature_valid: Bool?
        /// Whether it verified with each secret, in the order given.
        public let signatures_valid: [Bool]?
    }

    /// Starts the receiver and waits until it listens; with `secret` (or `secrets`), it checks
    /// every signature;
    /// with `certificates`, it serves https.
    /// With `port`, it listens there (to come back where it was after a stop).
    /// With `address`, it listens on that address instead of 127.0.0.1 (`::1`, say).
    /// With `status`, it answers every request with it (a receiver up and failing).
    public static func start(
        verifyingWith secret: String? = nil, secrets: [String] = [], certificates: TestCertificates? = nil, port: Int? = nil, address: String? = nil, status: Int? = nil
    ) async throws -> WebhookReceiver {
        var arguments = ((secret.map { [$0] } ?? []) + secrets).flatMap { ["--secret", $0] }
        if let status { arguments += ["--status", String(status)] }
        if let address { arguments += ["--host", address] }
        if let port { arguments += ["--port", String(port)] }
        if let certificates { arguments += ["--cert", certificates.serverCertificate, "--key", certificates.serverKey] }
        return WebhookReceiver(server: try await ScriptedServer.start("webhook-receiver.py", arguments), scheme: certificates == nil ? "http" : "https")
    }

    public var port: Int { server.port }

    /// A URL on this receiver; `host` may be a name that resolves to 127.0.0.1, such as localhost.
    public func url(_ path: String, host: String = "127.0.0.1") -> String {
        "\(scheme)://\(host):\(server.port)\(path.hasPrefix("/") ? path : "/" + path)"
    }

    public func requests() throws -> [Request] {
        try server.entries(Request.self)
    }

    /// Waits until `count` requests have arrived, failing after `timeout`.
    public func waitForRequests(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [Request] {
        try await server.waitForEntries(Request.self, count, timeout: timeout)
    }

    public func stop() {
        server.stop()
    }

    /// Kills the receiver but keeps its log, so what it got stays countable.
    public func kill() {
        server.stop(keepingLog: true)
    }
}
