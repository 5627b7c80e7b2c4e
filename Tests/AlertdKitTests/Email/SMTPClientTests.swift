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
        #expect(result.sessionError != nil)
        #expect(result.message == nil)
        #expect(try sink.messages().isEmpty)
        print("untrusted certificate:", result.sessionError ?? "")
    }

    @Test func aCertificateForAnotherHostIsRefused() async throws {
        let certificates = try await TestCertificates.make(hostName: "mail.other.example", includeLoopbackAddress: false)
        var options = SMTPSink.Options()
        options.certificate = (certificates.serverCertificate, certificates.serverKey)
        let sink = try await SMTPSink.start(options)
        defer { sink.stop() }
        // Trusted CA, but the certificate names mail.other.example, not localhost.
        let client = SMTPClient(settings: try Self.settings(port: sink.port, host: "localhost", tls: "required", caFile: certificates.caFile))
        let result = try #require(await client.send([Self.message(to: ["ops@example.com"])]).first)
        #expect(result.sessionError != nil)
        #expect(result.message == nil)
        #expect(try sink.messages().isEmpty)
    }

    @Test func aServerThatIsDownFailsTheSession() async throws {
        let client = SMTPClient(settings: try Self.settings(port: 1))
        let result = try #require(await client.send([Self.message(to: ["ops@example.com"])]).first)
        #expect(result.sessionError != nil)
        #expect(result.recipients["ops@example.com"]?.code == 0)
    }

    @Test func credentialsWithoutRequiredTLSAreAConfigurationError() {
        let parsed = SMTPSettings.parse(url: "smtp://u:p@mail.example.com", from: "alertd@example.com", tls: "optional", caFile: nil, allowInsecureAuth: false, timeout: .seconds(5))
        #expect(parsed.settings == nil)
        #expect(parsed.problems.contains { $0.contains("unencrypted") })
        #expect(!parsed.problems.joined().contains("u:p"))
        let implicit = SMTPSettings.parse(url: "smtps://mail.example.com:465", from: "alertd@example.com", tls: nil, caFile: nil, allowInsecureAuth: false, timeout: .seconds(5))
        #expect(implicit.settings == nil)
    }
}
