@testable import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// alertd against Debian's Postfix as a mail relay is run in production: STARTTLS with TLS 1.3,
/// Cyrus SASL AUTH required before any mail (deploy/dev/postfix.sh).
@Suite struct PostfixTests {
    static func message(_ marker: String, from: String = "alertd@example.com", to: [String] = ["ops@example.com"]) -> EmailMessage {
        EmailMessage(from: from, to: to, subject: "Postfix \(marker)", text: "marker \(marker)", html: "<p>\(marker)</p>", messageID: "\(marker)@example.com", date: Date())
    }

    /// Postfix's log lines for one session's client port are not kept; the sessions are told apart
    /// by counting what the whole log says before and after.
    static func count(_ needle: String, in postfix: TestPostfix) throws -> Int {
        try postfix.log().filter { $0.contains(needle) }.count
    }

    /// Each session negotiates TLS 1.3, gets the server's session tickets after the handshake and
    /// must not stall on them (libESMTP once read them as a reply and waited for the timeout).
    @Test func twoHundredSessionsOverTLS13AllDeliverAndNoneStalls() async throws {
        let postfix = try TestPostfix.fromEnvironment()
        // A stall lasts the whole timeout, then fails the session: 5 s tells one from a slow machine.
        let client = SMTPClient(settings: try postfix.settings(timeout: .seconds(5)))
        let tls13Before = try Self.count("TLSv1.3 with cipher", in: postfix)
        let run = UUID().uuidString.prefix(8)
        var markers: [String] = []
        var failures: [String] = []
        for index in 0..<200 {
            let marker = "tls13-\(run)-\(index)"
            markers.append(marker)
            let result = await client.send([Self.message(marker)])
            if result.first?.message?.isSuccess != true { failures.append("\(index): \(String(describing: result.first))") }
            if failures.count == 5 { break }
        }
        #expect(failures.isEmpty, "\(failures.count) of 200 sessions failed: \(failures.prefix(5))")
        #expect(try Self.count("TLSv1.3 with cipher", in: postfix) - tls13Before >= 200)
        let delivered = try await postfix.waitForDelivery(of: markers)
        #expect(delivered.count == 200)
    }

    @Test func aRefusedLoginEndsTheSessionBeforeMailFrom() async throws {
        let postfix = try TestPostfix.fromEnvironment()
        let refusedBefore = try Self.count("authentication failed", in: postfix)
        // A sender of this test's own, for its MAIL FROM to be found in Postfix's log if it came.
        let sender = "refused-\(UUID().uuidString.prefix(8).lowercased())@example.com"
        let client = SMTPClient(settings: try postfix.settings(password: "not-the-password"))
        let result = try #require(await client.send([Self.message("refused-\(UUID().uuidString)", from: sender)]).first)
        #expect(result.sessionFailure?.reason == .loginRefused, "\(result)")
        #expect(result.sessionError?.contains("refused the login of user \"\(postfix.user)\"") == true, "\(result)")
        #expect(result.sessionError?.contains("not-the-password") == false)
        // No recipient verdict: nothing was asked of recipients without the login.
        #expect(result.recipients["ops@example.com"]?.code == 0)
        #expect(result.message == nil)
        // Postfix writes its log a moment later.
        try await DispatcherEndToEndTests.waitUntil(.seconds(10)) { try Self.count("authentication failed", in: postfix) > refusedBefore }
        // Postfix logs every MAIL FROM it is given, accepted or not (NOQUEUE: reject: ... from=<...>).
        #expect(try Self.count("from=<\(sender)>", in: postfix) == 0)
    }

    @Test func theRelaysRefusalsAreTheRecipientsOwn() async throws {
        let postfix = try TestPostfix.fromEnvironment()
        let client = SMTPClient(settings: try postfix.settings())
        let marker = "refusals-\(UUID().uuidString)"
        let result = try #require(await client.send([Self.message(marker, to: ["ops@example.com", "bounce@example.com", "tempfail@example.com"])]).first)
        #expect(result.sessionFailure == nil, "\(result)")
        #expect(result.recipients["ops@example.com"]?.isSuccess == true)
        #expect(result.recipients["bounce@example.com"]?.code == 550)
        #expect(result.recipients["tempfail@example.com"]?.code == 450)
        let delivered = try await postfix.waitForDelivery(of: [marker])
        #expect(delivered.first?.rcpt_tos == ["ops@example.com"])
    }

    @Test func anIPAddressedRelayWithAnIPSANIsTrustedAndAnUntrustedOneSaysWhy() async throws {
        let postfix = try TestPostfix.fromEnvironment()
        let byAddress = SMTPClient(settings: try postfix.settings(host: "127.0.0.1"))
        let marker = "by-address-\(UUID().uuidString)"
        let sent = try #require(await byAddress.send([Self.message(marker)]).first)
        #expect(sent.message?.isSuccess == true, "\(sent)")
        // The system's CAs do not know the throwaway CA.
        let untrusted = SMTPClient(settings: try postfix.settings(caFile: .some(nil)))
        let refused = try #require(await untrusted.send([Self.message("untrusted-\(UUID().uuidString)")]).first)
        #expect(refused.sessionFailure?.reason == .certificateNotTrusted, "\(refused)")
        #expect(refused.sessionError?.contains("OpenSSL: ") == true)
    }

    /// `alertd run` with a wrong password: the alert is retried like any temporary failure, its
    /// error says the login was refused, and readiness and the metric say so while it lasts.
    @Test func alertdRetriesARefusedLoginAndSaysSoInReadinessAndMetrics() async throws {
        let postfix = try TestPostfix.fromEnvironment()
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: [
                "ALERTD_DATABASE_URL": database.alertdURL,
                "ALERTD_SMTP_URL": postfix.url(password: "not-the-password"),
                "ALERTD_SMTP_CA_FILE": postfix.caFile,
                "ALERTD_SMTP_FROM": "alertd@example.com",
                "ALERTD_RETRY_INITIAL": "30s",
                "ALERTD_HTTP_ADDRESS": "127.0.0.1:0",
            ])
            let address = try await StatusEndToEndTests.statusAddress(of: alertd)
            try await EmailEndToEndTests.failRun(database, emails: ["ops@example.com"])
            try await DispatcherEndToEndTests.waitUntil { try await EmailEndToEndTests.alertState(database).attempts == 1 }
            try await Task.sleep(for: .milliseconds(300))
            let state = try await EmailEndToEndTests.alertState(database)
            #expect(state.status == "pending", "\(state)")
            #expect(state.error?.contains("refused the login") == true, "\(state)")
            let outcomes = try await database.withConnection { connection in
                try await connection.query("SELECT outcome FROM integration_alert_attempts").map { try $0.decode("outcome", as: String.self) }
            }
            #expect(outcomes == ["retry"])
            let health = try await TestProcess.alertd(["health", "--http-address", address.description])
            #expect(health.status == 1)
            #expect(health.allOutput.contains("refused the login"), "\(health.allOutput)")
            let metrics = try await StatusProbe.get("/metrics", from: address, timeout: .seconds(5))
            #expect(metrics.body.contains("alertd_smtp_login_refused 1"))
            #expect(metrics.body.contains("alertd_smtp_session_failures_total{reason=\"login_refused\"} 1"))
            #expect(!alertd.output.contains("not-the-password"))
            await alertd.stopExpectingExitZero()
        }
    }
}
