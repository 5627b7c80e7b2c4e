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

    /// Checks each of `files` as a request's body by `service`'s documented rules (the receiver's
    /// own checks, run by `chat-receiver.py --check`): the problems of each file, by its path.
    public static func check(service: String, files: [URL]) async throws -> [String: [String]] {
        struct Line: Decodable {
            let file: String
            let problems: [String]
        }
        let script = TestPostgres.packageRoot.appending(path: "deploy/dev/chat-receiver.py").path
        let result = try await TestProcess.run("/usr/bin/python3", [script, "--service", service, "--check"] + files.map(\.path))
        guard result.status == 0 else { throw TestSetupError("chat-receiver.py --check did not run: \(result.status)") }
        var problems: [String: [String]] = [:]
        for line in result.standardOutput.split(separator: "\n") {
            let entry = try JSONDecoder().decode(Line.self, from: Data(line.utf8))
            problems[entry.file] = entry.problems
        }
        guard problems.count == Set(files.map(\.path)).count else { throw TestSetupError("chat-receiver.py --check answered for \(problems.count) of \(files.count) files") }
        return problems
    }

    /// Starts a receiver for `service` (`slack`, `discord`, `teams`, `google_chat`) and waits
    /// until it listens.
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
