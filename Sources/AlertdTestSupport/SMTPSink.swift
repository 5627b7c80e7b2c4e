import Foundation

/// The real SMTP server `deploy/dev/smtp-sink.py` (aiosmtpd), started for one test.
public final class SMTPSink: Sendable {
    private let server: ScriptedServer

    private init(server: ScriptedServer) {
        self.server = server
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
        /// Listen on this port (to come back where it was after a stop).
        public var port: Int?
        public init() {}
    }

    public static func start(_ options: Options = Options()) async throws -> SMTPSink {
        var arguments = options.reject.flatMap { ["--reject", $0] } + options.tempfail.flatMap { ["--tempfail", $0] }
        if let certificate = options.certificate { arguments += ["--cert", certificate.cert, "--key", certificate.key] }
        if let auth = options.auth { arguments += ["--auth", "\(auth.user):\(auth.password)"] }
        if let port = options.port { arguments += ["--port", String(port)] }
        return SMTPSink(server: try await ScriptedServer.start("smtp-sink.py", arguments))
    }

    public var port: Int { server.port }

    public func messages() throws -> [Message] {
        try server.entries(Message.self)
    }

    public func waitForMessages(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [Message] {
        try await server.waitForEntries(Message.self, count, timeout: timeout)
    }

    public func stop() {
        server.stop()
    }

    /// Kills the sink but keeps its log, so what it got stays countable.
    public func kill() {
        server.stop(keepingLog: true)
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
