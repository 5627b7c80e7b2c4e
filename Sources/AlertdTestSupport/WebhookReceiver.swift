import Foundation

/// The real HTTP server `deploy/dev/webhook-receiver.py`, started for one test.
public final class WebhookReceiver: Sendable {
    private let server: ScriptedServer

    private init(server: ScriptedServer) {
        self.server = server
    }

    /// A request the receiver got.
    public struct Request: Sendable, Decodable {
        public let time: Double
        public let method: String
        public let path: String
        public let headers: [String: String]
        public let body: String
        /// Whether the receiver verified the signature; nil when it was given no secret.
        public let signature_valid: Bool?
    }

    /// Starts the receiver and waits until it listens; with `secret`, it checks every signature.
    public static func start(verifyingWith secret: String? = nil) async throws -> WebhookReceiver {
        WebhookReceiver(server: try await ScriptedServer.start("webhook-receiver.py", secret.map { ["--secret", $0] } ?? []))
    }

    public var port: Int { server.port }

    public func url(_ path: String) -> String {
        "http://127.0.0.1:\(server.port)\(path.hasPrefix("/") ? path : "/" + path)"
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
}
