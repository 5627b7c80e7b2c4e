import AlertdKit
import AlertdTestSupport
import Foundation
import Testing

@Suite struct SMTPClientTests {
    static func message(to: [String], id: String = UUID().uuidString) -> EmailMessage {
        EmailMessage(from: "alertd@example.com", to: to, subject: "Sync failed: Zürich", text: "plain", html: "<p>html</p>", messageID: "\(id)@alertd", date: Date())
    }

    static func settings(port: Int, host: String = "127.0.0.1", tls: String = "none", user: String? = nil, caFile: String? = nil) throws -> SMTPSettings {
        let credentials = user.map { "\($0):S3cr3t-pw@" } ?? ""
        let parsed = SMTPSettings.parse(url: "smtp://\(credentials)\(host):\(port)", from: "alertd@example.com", tls: tls, caFile: caFile, allowInsecureAuth: false, timeout: .seconds(10))
        return try #require(parsed.settings, "\(parsed.problems)")
    }

    @Test func sendsSeveralMessagesInOneSessionWithAReplyPerRecipient() async throws {
        let sink = try await SMTPSink.start({ var o = SMTPSink.Options(); o.reject = ["gone@example.com"]; o.tempfail = ["busy@example.com"]; return o }())
        defer { sink.stop() }
        let client = SMTPClient(settings: try Self.settings(port: sink.port))
        let results = await client.send([
            Self.message(to: ["ops@example.com", "gone@example.com", "busy@example.com"]),
            Self.message(to: ["payroll@example.com"]),
        ])
        #expect(results.count == 2)
        #expect(results[0].sessionError == nil)
        #expect(results[0].message?.code == 250)
        #expect(results[0].recipients["ops@example.com"]?.code == 250)
        #expect(results[0].recipients["gone@example.com"]?.code == 550)
        #expect(results[0].recipients["busy@example.com"]?.code == 451)
        #expect(results[1].recipients["payroll@example.com"]?.code == 250)
        let received = try await sink.waitForMessages(2)
        #expect(received[0].rcpt_tos == ["ops@example.com"])
        #expect(received[1].rcpt_tos == ["payroll@example.com"])
        #expect(received[0].data.contains("Subject: =?UTF-8?B?"))
    }

    @Test func startTLSAndAuthWithAVerifiedCertificate() async throws {
        let certificates = try await TestCertificates.make()
        var options = SMTPSink.Options()
        options.certificate = (certificates.serverCertificate, certificates.serverKey)
        options.auth = ("alertd", "S3cr3t-pw")
        let sink = try await SMTPSink.start(options)
        defer { sink.stop() }
        let client = SMTPClient(settings: try Self.settings(port: sink.port, host: "localhost", tls: "required", user: "alertd", caFile: certificates.caFile))
        let result = try #require(await client.send([Self.message(to: ["ops@example.com"])]).first)
        #expect(result.sessionError == nil, "\(result)")
        #expect(result.message?.code == 250)
        let received = try #require(try await sink.waitForMessages(1).first)
        #expect(received.tls)
        #expect(received.auth_user == "alertd")
    }

    @Test func anUntrustedCertificateIsRefused() async throws {
        let certificates = try await TestCertificates.make()
        let other = try await TestCertificates.make()
        var options = SMTPSink.Options()
        options.certificate = (certificates.serverCertificate, certificates.serverKey)
        let sink = try await SMTPSink.start(options)
        defer { sink.stop() }
        // Trusting a different CA: the server's certificate does not verify.
        let client = SMTPClient(settings: try Self.settings(port: sink.port, host: "localhost", tls: "required", caFile: other.caFile))
        let result = try #require(await client.send([Self.message(to: ["ops@example.com"])]).first)
        #expect(result.sessionFailure?.reason == .certificateNotTrusted, "\(result)")
        // OpenSSL's own words for why, not a library error number.
        #expect(result.sessionError?.contains("OpenSSL: ") == true && result.sessionError?.contains("certificate") == true, "\(result)")
        #expect(result.sessionError?.contains("libesmtp error") == false)
        #expect(result.message == nil)
        #expect(try sink.messages().isEmpty)
    }

    @Test func aCertificateForAnotherHostIsRefused() async throws {
        let certificates = try await TestCertificates.make(hostName: "mail.other.example", includeLoopbackAddress: false)
        var options = SMTPSink.Options()
        options.certificate = (certificates.serverCertificate, certificates.serverKey)
        let sink = try await SMTPSink.start(options)
        defer { sink.stop() }
        // Trusted CA, but the certificate names mail.other.example, not localhost.
        for host in ["localhost", "127.0.0.1"] {
            let client = SMTPClient(settings: try Self.settings(port: sink.port, host: host, tls: "required", caFile: certificates.caFile))
            let result = try #require(await client.send([Self.message(to: ["ops@example.com"])]).first)
            #expect(result.sessionFailure?.reason == .certificateForAnotherHost, "\(host): \(result)")
            #expect(result.sessionError?.contains("does not name \(host)") == true, "\(result)")
            #expect(result.message == nil)
        }
        #expect(try sink.messages().isEmpty)
    }

    /// A server addressed by IP whose certificate has that IP in an IP SAN (and no DNS name for
    /// it) is the right server.
    @Test func anIPAddressedServerWithAMatchingIPSANIsAccepted() async throws {
        let certificates = try await TestCertificates.make(hostName: "mail.other.example", includeLoopbackAddress: true)
        var options = SMTPSink.Options()
        options.certificate = (certificates.serverCertificate, certificates.serverKey)
        let sink = try await SMTPSink.start(options)
        defer { sink.stop() }
        let client = SMTPClient(settings: try Self.settings(port: sink.port, host: "127.0.0.1", tls: "required", caFile: certificates.caFile))
        let result = try #require(await client.send([Self.message(to: ["ops@example.com"])]).first)
        #expect(result.sessionError == nil, "\(result)")
        #expect(result.message?.code == 250)
    }

    @Test func aServerWithoutSTARTTLSIsRefusedWhenTLSIsRequired() async throws {
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        let client = SMTPClient(settings: try Self.settings(port: sink.port, host: "localhost", tls: "required"))
        let result = try #require(await client.send([Self.message(to: ["ops@example.com"])]).first)
        #expect(result.sessionFailure?.reason == .noStartTLS, "\(result)")
        #expect(result.sessionError?.contains("does not offer STARTTLS") == true)
        #expect(try sink.messages().isEmpty)
    }

    /// A server that accepts the connection and never says a word: alertd's own timeout, named.
    @Test func aServerThatNeverAnswersIsAlertdsTimeout() async throws {
        let silent = try LoopbackListener(behaviour: .silent)
        defer { silent.close() }
        let parsed = SMTPSettings.parse(url: "smtp://127.0.0.1:\(silent.port)", from: "alertd@example.com", tls: "none", caFile: nil, allowInsecureAuth: false, timeout: .seconds(1))
        let client = SMTPClient(settings: try #require(parsed.settings))
        let result = try #require(await client.send([Self.message(to: ["ops@example.com"])]).first)
        #expect(result.sessionFailure?.reason == .timedOut, "\(result)")
        #expect(result.sessionError?.contains("did not answer within alertd's timeout (ALERTD_SMTP_TIMEOUT, 1 s)") == true, "\(result)")
    }

    /// Silent in the middle of a session: the step it stopped at is named, not the QUIT that
    /// ends the session after the timeout.
    @Test func aServerThatStopsAnsweringMidSessionIsAlertdsTimeoutAfterThatStep() async throws {
        let slow = try LoopbackListener(behaviour: .answerEHLOThenSilent)
        defer { slow.close() }
        let parsed = SMTPSettings.parse(url: "smtp://127.0.0.1:\(slow.port)", from: "alertd@example.com", tls: "none", caFile: nil, allowInsecureAuth: false, timeout: .seconds(1))
        let client = SMTPClient(settings: try #require(parsed.settings))
        let result = try #require(await client.send([Self.message(to: ["ops@example.com"])]).first)
        #expect(result.sessionFailure?.reason == .timedOut, "\(result)")
        #expect(result.sessionError?.contains("within alertd's timeout (ALERTD_SMTP_TIMEOUT, 1 s) after MAIL") == true, "\(result)")
    }

    @Test func aServerThatClosesTheConnectionSaysSo() async throws {
        let closing = try LoopbackListener(behaviour: .greetThenClose)
        defer { closing.close() }
        let client = SMTPClient(settings: try Self.settings(port: closing.port))
        let result = try #require(await client.send([Self.message(to: ["ops@example.com"])]).first)
        #expect(result.sessionFailure?.reason == .closedByServer, "\(result)")
        #expect(result.sessionError?.contains("closed the connection after EHLO") == true, "\(result)")
    }

    @Test func aServerThatIsDownFailsTheSession() async throws {
        let client = SMTPClient(settings: try Self.settings(port: 1))
        let result = try #require(await client.send([Self.message(to: ["ops@example.com"])]).first)
        #expect(result.sessionFailure?.reason == .cannotConnect, "\(result)")
        #expect(result.sessionError?.contains("Connection refused") == true, "\(result)")
        #expect(result.recipients["ops@example.com"]?.code == 0)
    }

    /// Every set-up call is checked: a CA file OpenSSL cannot read means no session at all, and
    /// says so, rather than a session whose certificate check was never set up.
    @Test func aSessionThatCannotBeSetUpIsNotStartedAndSaysWhy() async throws {
        let garbage = FileManager.default.temporaryDirectory.appending(path: "alertd-not-a-ca-\(UUID().uuidString).pem")
        try Data("not a certificate\n".utf8).write(to: garbage)
        defer { try? FileManager.default.removeItem(at: garbage) }
        // Nothing listens on port 1: a session that started would fail to connect instead.
        let client = SMTPClient(settings: try Self.settings(port: 1, host: "localhost", tls: "required", caFile: garbage.path))
        let result = try #require(await client.send([Self.message(to: ["ops@example.com"])]).first)
        #expect(result.sessionError == "alertd could not set up the SMTP session: libESMTP or OpenSSL refused the CA file \(garbage.path) (OpenSSL cannot read it).", "\(result)")
    }

    @Test func credentialsWithoutRequiredTLSAreAConfigurationError() {
        let parsed = SMTPSettings.parse(url: "smtp://u:p@mail.example.com", from: "alertd@example.com", tls: "optional", caFile: nil, allowInsecureAuth: false, timeout: .seconds(5))
        #expect(parsed.settings == nil)
        #expect(parsed.problems.contains { $0.contains("unencrypted") })
        #expect(!parsed.problems.joined().contains("u:p"))
        for url in ["smtps://mail.example.com:465", "smtp://mail.example.com:465", "smtps://mail.example.com"] {
            let implicit = SMTPSettings.parse(url: url, from: "alertd@example.com", tls: nil, caFile: nil, allowInsecureAuth: false, timeout: .seconds(5))
            #expect(implicit.settings == nil)
            #expect(implicit.problems.contains { $0.contains("implicit TLS") && $0.contains("smtp://mail.example.com:587") }, "\(implicit.problems)")
        }
    }

    @Test func theSenderMayHaveADisplayNameAndEHLOIsFullyQualified() throws {
        let parsed = SMTPSettings.parse(url: "smtp://mail.example.com", from: "Payroll Alerts <alerts@example.com>", tls: nil, caFile: nil, allowInsecureAuth: false, timeout: .seconds(5))
        let settings = try #require(parsed.settings, "\(parsed.problems)")
        #expect(settings.from == "alerts@example.com")
        #expect(settings.fromName == "Payroll Alerts")
        #expect(settings.heloName.contains("."))
        #expect(EmailMessage.mailbox("alerts@example.com", name: "Payroll Alerts") == "Payroll Alerts <alerts@example.com>")
        #expect(EmailMessage.mailbox("alerts@example.com", name: "Ops, Payroll") == "\"Ops, Payroll\" <alerts@example.com>")
        #expect(EmailMessage.mailbox("alerts@example.com", name: "Zürich Ops") == "=?UTF-8?B?WsO8cmljaCBPcHM=?= <alerts@example.com>")
        let quoted = try #require(SMTPSettings.parse(url: "smtp://mail.example.com", from: "\"Ops, Payroll\" <alerts@example.com>", tls: nil, caFile: nil, allowInsecureAuth: false, timeout: .seconds(5)).settings)
        #expect(quoted.fromName == "Ops, Payroll")
        for bad in ["Alerts <not an address>", "Alerts alerts@example.com", "<alerts@example.com"] {
            #expect(SMTPSettings.parse(url: "smtp://mail.example.com", from: bad, tls: nil, caFile: nil, allowInsecureAuth: false, timeout: .seconds(5)).settings == nil, "\(bad)")
        }
        let named = SMTPSettings.parse(url: "smtp://mail.example.com", from: "alerts@example.com", tls: nil, caFile: nil, allowInsecureAuth: false, timeout: .seconds(5), heloName: "alertd.example.com")
        #expect(named.settings?.heloName == "alertd.example.com")
        let short = SMTPSettings.parse(url: "smtp://mail.example.com", from: "alerts@example.com", tls: nil, caFile: nil, allowInsecureAuth: false, timeout: .seconds(5), heloName: "vm")
        #expect(short.problems.contains { $0.contains("ALERTD_SMTP_HELO_NAME") })
    }
}
