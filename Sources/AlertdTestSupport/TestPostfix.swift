import AlertdKit
import Foundation

/// The Postfix that `deploy/dev/test.sh` starts with deploy/dev/postfix.sh: Debian's Postfix on
/// loopback, STARTTLS (a throwaway CA) and Cyrus SASL AUTH required, relaying what it accepts to
/// an aiosmtpd sink whose log says what was delivered. Without its `ALERTD_TEST_POSTFIX_*`
/// variables every test that needs it fails, saying so: none skips.
public struct TestPostfix: Sendable {
    public let port: Int
    public let user: String
    public let password: String
    public let caFile: String
    public let logFile: String
    public let deliveredFile: String

    public static func fromEnvironment() throws -> TestPostfix {
        let environment = ProcessInfo.processInfo.environment
        func value(_ name: String) throws -> String {
            guard let value = environment["ALERTD_TEST_POSTFIX_\(name)"], !value.isEmpty else {
                throw TestSetupError("ALERTD_TEST_POSTFIX_\(name) is not set. Run the tests with deploy/dev/test.sh, which starts Postfix, or export what deploy/dev/postfix.sh start prints.")
            }
            return value
        }
        guard let port = Int(try value("PORT")) else { throw TestSetupError("ALERTD_TEST_POSTFIX_PORT is not a port") }
        return TestPostfix(
            port: port, user: try value("USER"), password: try value("PASSWORD"), caFile: try value("CA_FILE"),
            logFile: try value("LOG"), deliveredFile: try value("DELIVERED")
        )
    }

    /// `ALERTD_SMTP_URL` for this server (with `password` instead of the right one, if given).
    public func url(host: String = "localhost", password: String? = nil) -> String {
        "smtp://\(user):\(password ?? self.password)@\(host):\(port)"
    }

    public func settings(host: String = "localhost", password: String? = nil, caFile: String?? = nil, timeout: Duration = .seconds(10)) throws -> SMTPSettings {
        let parsed = SMTPSettings.parse(
            url: url(host: host, password: password), from: "alertd@example.com", tls: "required",
            caFile: caFile ?? self.caFile, allowInsecureAuth: false, timeout: timeout
        )
        guard let settings = parsed.settings else { throw TestSetupError("Postfix settings: \(parsed.problems)") }
        return settings
    }

    /// Postfix's log, one line per entry.
    public func log() throws -> [String] {
        try String(contentsOfFile: logFile, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// What Postfix relayed to its sink.
    public func delivered() throws -> [SMTPSink.Message] {
        guard FileManager.default.fileExists(atPath: deliveredFile) else { return [] }
        return try String(contentsOfFile: deliveredFile, encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(SMTPSink.Message.self, from: Data($0.utf8)) }
    }

    /// Waits until Postfix has relayed a message whose data contains each of `markers`.
    public func waitForDelivery(of markers: [String], timeout: Duration = .seconds(60)) async throws -> [SMTPSink.Message] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let messages = try delivered()
            let found = markers.compactMap { marker in messages.first { $0.data.contains(marker) } }
            if found.count == markers.count { return found }
            if ContinuousClock.now > deadline {
                throw TestSetupError("Postfix relayed \(found.count) of \(markers.count) messages within \(timeout); its log ends:\n\((try? log().suffix(20).joined(separator: "\n")) ?? "")")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
