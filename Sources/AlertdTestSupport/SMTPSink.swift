import Foundation

/// The real SMTP server `deploy/dev/smtp-sink.py` (aiosmtpd), started for one test.
public final class SMTPSink: @unchecked Sendable {
    // Invariant: set in start(), read-only afterwards.
    private let process: Process
    private let logFile: URL
    public let port: Int

    private init(process: Process, logFile: URL, port: Int) {
        self.process = process
        self.logFile = logFile
        self.port = port
    }

    public struct Message: Sendable, Decodable {
        public let time: Double
        public let mail_from: String
        public let rcpt_tos: [String]
        public let data: String
        public let tls: Bool
        public let auth_user: String?
    }

    public struct Options: Sendable {
        public var reject: [String] = []
        public var tempfail: [String] = []
        /// Offer and require STARTTLS with this certificate and key.
        public var certificate: (cert: String, key: String)?
        /// Require AUTH with these credentials.
        public var auth: (user: String, password: String)?
        public init() {}
    }

    public static func start(_ options: Options = Options()) async throws -> SMTPSink {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try startBlocking(options) }) }.start()
        }
    }

    private static func startBlocking(_ options: Options) throws -> SMTPSink {
        let logFile = FileManager.default.temporaryDirectory.appending(path: "alertd-smtp-\(UUID().uuidString).jsonl")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        var arguments = [TestPostgres.packageRoot.appending(path: "deploy/dev/smtp-sink.py").path, "--log", logFile.path]
        arguments += options.reject.flatMap { ["--reject", $0] }
        arguments += options.tempfail.flatMap { ["--tempfail", $0] }
        if let certificate = options.certificate { arguments += ["--cert", certificate.cert, "--key", certificate.key] }
        if let auth = options.auth { arguments += ["--auth", "\(auth.user):\(auth.password)"] }
        let process = Process()
        process.executableURL = URL(filePath: "/usr/bin/python3")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var line = Data()
        while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("listening on "), let port = Int(text.dropFirst("listening on ".count)) else {
            kill(process.processIdentifier, SIGKILL)
            throw TestSetupError("the SMTP sink did not start: \(text)")
        }
        return SMTPSink(process: process, logFile: logFile, port: port)
    }

    public func messages() throws -> [Message] {
        try String(contentsOf: logFile, encoding: .utf8).split(separator: "\n").map { try JSONDecoder().decode(Message.self, from: Data($0.utf8)) }
    }

    public func waitForMessages(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [Message] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let received = try messages()
            if received.count >= count { return received }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestSetupError("the SMTP sink got \(try messages().count) messages, not \(count), within \(timeout)")
    }

    /// Kills the sink without waiting (waiting would hold a thread of the concurrency pool).
    public func stop() {
        kill(process.processIdentifier, SIGKILL)
        try? FileManager.default.removeItem(at: logFile)
    }
}

/// A throwaway certificate authority and a server certificate for localhost and 127.0.0.1 it signed,
/// made with the openssl command for one test.
public struct TestCertificates: Sendable {
    public let directory: URL
    public var caFile: String { directory.appending(path: "ca.pem").path }
    public var serverCertificate: String { directory.appending(path: "server.pem").path }
    public var serverKey: String { directory.appending(path: "server.key").path }

    /// `hostName` is the only name the server certificate carries (with 127.0.0.1 when
    /// `includeLoopbackAddress`).
    public static func make(hostName: String = "localhost", includeLoopbackAddress: Bool = true) async throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appending(path: "alertd-certs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.path
        try "subjectAltName=DNS:\(hostName)\(includeLoopbackAddress ? ",IP:127.0.0.1" : "")\n".write(toFile: "\(path)/san.cnf", atomically: true, encoding: .utf8)
        for arguments in [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(path)/ca.key", "-out", "\(path)/ca.pem", "-days", "2", "-subj", "/CN=alertd test CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(path)/server.key", "-out", "\(path)/server.csr", "-subj", "/CN=\(hostName)"],
            ["x509", "-req", "-in", "\(path)/server.csr", "-CA", "\(path)/ca.pem", "-CAkey", "\(path)/ca.key", "-CAcreateserial", "-out", "\(path)/server.pem", "-days", "2", "-extfile", "\(path)/san.cnf"],
        ] {
            let result = try await TestProcess.run("/usr/bin/openssl", arguments)
            guard result.status == 0 else { throw TestSetupError("openssl \(arguments[0]) failed: \(result.standardError)") }
        }
        return TestCertificates(directory: directory)
    }
}
