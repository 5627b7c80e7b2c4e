import Foundation

/// The real HTTP server `deploy/dev/webhook-receiver.py`, started for one test.
public final class WebhookReceiver: @unchecked Sendable {
    // Invariant: set once in start(), read-only afterwards.
    private let process: Process
    private let logFile: URL
    public let port: Int

    private init(process: Process, logFile: URL, port: Int) {
        self.process = process
        self.logFile = logFile
        self.port = port
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

    /// Starts the receiver and waits until it listens; fails if it cannot.
    public static func start(verifyingWith secret: String? = nil) async throws -> WebhookReceiver {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try startBlocking(secret: secret) })
            }.start()
        }
    }

    private static func startBlocking(secret: String?) throws -> WebhookReceiver {
        let logFile = FileManager.default.temporaryDirectory.appending(path: "alertd-webhooks-\(UUID().uuidString).jsonl")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let process = Process()
        process.executableURL = URL(filePath: "/usr/bin/python3")
        process.arguments = [TestPostgres.packageRoot.appending(path: "deploy/dev/webhook-receiver.py").path, "--log", logFile.path]
            + (secret.map { ["--secret", $0] } ?? [])
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // The first line says which port it took.
        var line = Data()
        while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("listening on "), let port = Int(text.dropFirst("listening on ".count)) else {
            process.terminate()
            throw TestSetupError("the webhook receiver did not start: \(text)")
        }
        return WebhookReceiver(process: process, logFile: logFile, port: port)
    }

    public func url(_ path: String) -> String {
        "http://127.0.0.1:\(port)\(path.hasPrefix("/") ? path : "/" + path)"
    }

    public func requests() throws -> [Request] {
        let text = try String(contentsOf: logFile, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }

    /// Waits until `count` requests have arrived, failing after `timeout`.
    public func waitForRequests(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [Request] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let received = try requests()
            if received.count >= count { return received }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestSetupError("the webhook receiver got \(try requests().count) requests, not \(count), within \(timeout)")
    }

    /// Kills the receiver. It does not wait: waiting would hold a thread of the concurrency pool.
    public func stop() {
        kill(process.processIdentifier, SIGKILL)
        try? FileManager.default.removeItem(at: logFile)
    }
}
