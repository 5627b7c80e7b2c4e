@testable import AlertdKit
import AlertdTestSupport
import Foundation
import Testing

/// Every kind of message in every chat format: rendered examples kept in docs/chat-examples
/// (what docs/webhooks.md shows), and every message alertd can render checked by each service's
/// documented rules through the same checks the stand-in receivers make.
@Suite struct ChatExamplesTests {
    static let formats: [WebhookFormat] = [.slack, .discord, .teams, .googleChat]
    static let folder = TestPostgres.packageRoot.appending(path: "docs/chat-examples")
    static let now = Date(timeIntervalSince1970: 1_763_811_000)
    static let link = "https://etl.example.com/"

    /// The receiver's name for a format (`chat-receiver.py --service`).
    static func service(_ format: WebhookFormat) -> String { format.rawValue }

    /// One alert of each kind of message, fixed so that the examples render the same each time.
    static func examples() -> [(name: String, alert: ClaimedAlert)] {
        let failure = AlertTemplatesTests.alert(type: .failure)
        let sync = failure.sync!
        func incident(_ kind: ClaimedAlert.Incident.Kind, resolved: Bool) -> ClaimedAlert.Incident {
            var incident = ClaimedAlert.Incident(
                id: UUID(uuidString: "00000000-0000-0000-0000-0000000000d1")!, openedAt: sync.startedAt.addingTimeInterval(-14_400), severity: "failure",
                resolvedAt: resolved ? now.addingTimeInterval(-60) : nil, remindersSent: 1, failedRuns: kind == .run ? 5 : nil,
                recentRuns: kind == .run ? [sync.id] : [], lastFailedAt: kind == .run ? sync.startedAt : nil, lastError: kind == .run ? "HTTP 401 from Paycom" : nil
            )
            incident.kind = kind
            incident.endpoint = "employees"
            switch kind {
            case .overdue:
                incident.expectedAt = sync.startedAt.addingTimeInterval(3600)
                incident.frequency = "hourly"
                incident.graceSeconds = 900
            case .stuck:
                incident.stuckAfterSeconds = 5400
                incident.typicalSeconds = 1800
                incident.typicalFrom = "recent_runs"
            default: break
            }
            return incident
        }
        // The run that ended an incident, and one still running.
        let fixed = AlertTemplatesTests.alert(type: .success, error: nil).sync!
        let running = ClaimedAlert.SyncRun(
            id: sync.id, endpoint: "employees", status: "running", startedAt: sync.startedAt, completedAt: nil, durationSeconds: nil, recordsSynced: 1_200,
            recordsFailed: 0, recordsSkipped: 0, errorMessage: nil, retryCount: 0, maxRetries: 3, retryAt: nil, triggeredBy: "scheduled"
        )
        func alert(_ type: AlertType, origin: Origin = .incident, sync: ClaimedAlert.SyncRun? = sync, incident: ClaimedAlert.Incident?) -> ClaimedAlert {
            ClaimedAlert(
                id: failure.id, type: type, channel: .webhook, origin: origin, recipients: failure.recipients, attempt: 1, maxAttempts: 10,
                createdAt: nil, integration: failure.integration, sync: sync, incident: incident
            )
        }
        var grouped = failure
        grouped.groupKey = "group"
        grouped.grouped = ["benefits", "payroll"].enumerated().map { index, endpoint in
            ClaimedAlert(
                id: UUID(uuidString: "00000000-0000-0000-0000-0000000000a\(index + 2)")!, type: .failure, channel: .webhook, origin: .trigger,
                recipients: failure.recipients, attempt: 1, maxAttempts: 10, createdAt: nil, integration: failure.integration,
                sync: .init(
                    id: UUID(uuidString: "00000000-0000-0000-0000-0000000000b\(index + 2)")!, endpoint: endpoint, status: index == 0 ? "partial" : "failed",
                    startedAt: sync.startedAt.addingTimeInterval(Double(index + 1)), completedAt: nil, durationSeconds: nil, recordsSynced: 40, recordsFailed: 3 + index,
                    recordsSkipped: 0, errorMessage: index == 0 ? nil : "HTTP 401 from Paycom", retryCount: 0, maxRetries: 0, retryAt: nil, triggeredBy: "scheduled"
                )
            )
        }
        let test = ClaimedAlert(
            id: failure.id, type: .success, channel: .webhook, origin: .test, recipients: failure.recipients, attempt: 1, maxAttempts: 1,
            createdAt: nil, integration: nil, sync: nil
        )
        return [
            ("failure", failure),
            ("failure-grouped", grouped),
            ("warning", AlertTemplatesTests.alert(type: .warning, error: "3 employees without a cost centre")),
            ("success", AlertTemplatesTests.alert(type: .success, error: nil)),
            ("test", test),
            ("reminder", alert(.reminder, incident: incident(.run, resolved: false))),
            ("recovery", alert(.recovery, sync: fixed, incident: incident(.run, resolved: true))),
            ("overdue", alert(.overdue, sync: nil, incident: incident(.overdue, resolved: false))),
            ("resumed", alert(.recovery, sync: fixed, incident: incident(.overdue, resolved: true))),
            ("stuck", alert(.stuck, sync: running, incident: incident(.stuck, resolved: false))),
            ("stuck_ended", alert(.recovery, sync: fixed, incident: incident(.stuck, resolved: true))),
        ]
    }

    /// docs/chat-examples/<format>/<kind>.json are what alertd renders today; with
    /// ALERTD_WRITE_CHAT_EXAMPLES=1 the test writes them instead.
    @Test func theDocumentedExamplesAreWhatAlertdRenders() async throws {
        let templates = try await AlertTemplates.load(from: AlertTemplatesTests.directory)
        let write = ProcessInfo.processInfo.environment["ALERTD_WRITE_CHAT_EXAMPLES"] == "1"
        for format in Self.formats {
            let folder = Self.folder.appending(path: format.rawValue)
            if write { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
            var files: [URL] = []
            for (name, alert) in Self.examples() {
                let body = try templates.renderChat(format, AlertContext(alert: alert, linkBase: Self.link, now: Self.now))
                let file = folder.appending(path: "\(name).json")
                files.append(file)
                if write {
                    try body.write(to: file)
                } else {
                    let kept = try Data(contentsOf: file)
                    #expect(kept == body, "\(file.path) is not what alertd renders: run the test with ALERTD_WRITE_CHAT_EXAMPLES=1 and review the change")
                }
            }
            for (file, problems) in try await ChatReceiver.check(service: Self.service(format), files: files) {
                #expect(problems.isEmpty, "\(file): \(problems)")
            }
        }
    }

    /// docs/webhooks.md shows each service's failure: the one in docs/chat-examples.
    @Test func theWebhooksGuideShowsEachServicesFailureAsRendered() throws {
        let guide = try String(contentsOf: TestPostgres.packageRoot.appending(path: "docs/webhooks.md"), encoding: .utf8)
        for (format, heading) in [(WebhookFormat.slack, "### Slack"), (.discord, "### Discord"), (.teams, "### Microsoft Teams"), (.googleChat, "### Google Chat")] {
            let section = try #require(guide.range(of: "\n\(heading)\n"), "no \(heading) in docs/webhooks.md")
            let start = try #require(guide.range(of: "```json\n", range: section.upperBound..<guide.endIndex))
            let end = try #require(guide.range(of: "\n```\n", range: start.upperBound..<guide.endIndex))
            let shown = try JSONSerialization.jsonObject(with: Data(guide[start.upperBound..<end.lowerBound].utf8)) as? NSDictionary
            let rendered = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.folder.appending(path: "\(format.rawValue)/failure.json"))) as? NSDictionary
            #expect(shown != nil && shown == rendered, "the example under \(heading) is not docs/chat-examples/\(format.rawValue)/failure.json")
        }
    }

    /// Every shape of alert, with hostile and oversized texts, with and without a link, renders
    /// to a message each service would accept.
    @Test func everyMessageAlertdRendersPassesEachServicesChecks() async throws {
        let templates = try await AlertTemplates.load(from: AlertTemplatesTests.directory)
        var alerts = try AlertTemplatesTests.everyShapeOfAlert()
        alerts.append(AlertTemplatesTests.alert(error: String(repeating: "<users/all> @everyone ```*_[x](y)& ", count: 2_000), name: "@here <@456> <users/all>"))
        let folder = FileManager.default.temporaryDirectory.appending(path: "alertd-chat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for format in Self.formats {
            var files: [URL] = []
            for (index, alert) in alerts.enumerated() {
                let body = try templates.renderChat(format, AlertContext(alert: alert, linkBase: index % 2 == 0 ? Self.link : nil))
                let file = folder.appending(path: "\(format.rawValue)-\(index).json")
                try body.write(to: file)
                files.append(file)
            }
            let problems = try await ChatReceiver.check(service: Self.service(format), files: files)
            let refused = problems.filter { !$0.value.isEmpty }
            #expect(refused.isEmpty, "\(format): \(refused.count) of \(files.count) messages break the service's rules, e.g. \(refused.first.map { "\($0.key): \($0.value)" } ?? "")")
        }
    }

    @Test func teamsAndGoogleChatURLsAndAnswers() {
        #expect(WebhookFormat.detect("https://prod-11.westus.logic.azure.com:443/workflows/0a1b/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers&sv=1.0&sig=x") == .format(.teams))
        #expect(WebhookFormat.detect("https://default0a1b.2c.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/0a1b/triggers/manual/paths/invoke?api-version=1&sig=x") == .format(.teams))
        #expect(WebhookFormat.detect("https://prod-11.westus.logic.azure.com/subscriptions/x") == .format(.standard))
        #expect(WebhookFormat.detect("https://chat.googleapis.com/v1/spaces/AAAA1234/messages?key=k&token=t") == .format(.googleChat))
        #expect(WebhookFormat.detect("https://chat.googleapis.com/v1/spaces/AAAA1234/members") == .format(.standard))
        #expect(WebhookFormat.named("teams") == .teams && WebhookFormat.named("msteams") == .teams)
        #expect(WebhookFormat.named("google_chat") == .googleChat && WebhookFormat.named("Google-Chat") == .googleChat)
        #expect(WebhookResponse.answered(status: 202, retryAfter: nil, body: "").decision(format: .teams) == .delivered)
        #expect(WebhookResponse.answered(status: 200, retryAfter: nil, body: "{}").decision(format: .googleChat) == .delivered)
        for format in [WebhookFormat.teams, .googleChat] {
            let gone = WebhookResponse.answered(status: 404, retryAfter: nil, body: "not found")
            guard case .failed(let reason) = gone.decision(format: format) else { Issue.record("\(format): 404 is not final"); continue }
            #expect(reason.contains("does not exist any more"))
            #expect(gone.signal(format: format) == .gone(reason: "HTTP 404: not found"))
            if case .retry = WebhookResponse.answered(status: 429, retryAfter: nil, body: "RESOURCE_EXHAUSTED").decision(format: format) {} else {
                Issue.record("\(format): a 429 is not retried")
            }
        }
    }

    @Test func markdownAndHTMLAreEscapedByEachServicesRules() {
        #expect(ChatMessage.teamsEscaped("**bold** _it_ [x](http://y) `c`") == #"\*\*bold\*\* \_it\_ \[x\](http://y) \`c\`"#)
        #expect(ChatMessage.teamsEscaped("- item\n1. first\n# head") == "\\- item\n1\\. first\n\\# head")
        #expect(ChatMessage.googleChatHTML("<b>x</b> & y\nz") == "&lt;b&gt;x&lt;/b&gt; &amp; y<br>z")
        #expect(ChatMessage.cut("a<br>defghijk", 10) == "a …[cut]")
    }
}
