import Foundation

/// `deploy/dev/chat-receiver.py`: a chat service's incoming webhooks as its documentation
/// describes them, checking each request by the service's rules and answering as it does.
public final class ChatReceiver: Sendable {
    private let server: ScriptedServer

    private init(server: ScriptedServer) {
        self.server = server
    }

    /// A request the receiver got, and the service's rules it broke (empty: it was accepted).
    public struct Request: Sendable, Decodable {
        public let time: Double
        public let path: String
        public let headers: [String: String]
        public let body: String
        public let problems: [String]
        public let status: Int
    }

    /// Starts a receiver for `service` (`slack`) and waits until it listens.
    public static func start(service: String) async throws -> ChatReceiver {
        ChatReceiver(server: try await ScriptedServer.start("chat-receiver.py", ["--service", service]))
    }

    public func url(_ path: String) -> String {
        "http://127.0.0.1:\(server.port)\(path.hasPrefix("/") ? path : "/" + path)"
    }

    public func requests() throws -> [Request] {
        try server.entries(Request.self)
    }

    public func waitForRequests(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [Request] {
        try await server.waitForEntries(Request.self, count, timeout: timeout)
    }

    public func stop() {
        server.stop()
    }
}
