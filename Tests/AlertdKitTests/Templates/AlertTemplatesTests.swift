@testable import AlertdKit
import AlertdTestSupport
import Foundation
import Testing

@Suite struct AlertTemplatesTests {
    static var directory: URL { TestPostgres.packageRoot.appending(path: "templates") }

    static func alert(origin: Origin = .trigger, type: AlertType = .failure, error: String? = "HTTP 401 from Paycom", name: String = "Paycom") -> ClaimedAlert {
        ClaimedAlert(
            id: UUID(uuidString: "00000000-0000-0000-0000-0000000000a1")!, type: type, channel: .webhook, origin: origin,
            recipients: ["https://hooks.example.com/x"], attempt: 2, maxAttempts: 10, createdAt: nil,
            integration: .init(id: UUID(uuidString: "00000000-0000-0000-0000-0000000000c1")!, name: name, type: "paycom", environment: "production", tenantID: UUID(uuidString: "00000000-0000-0000-0000-0000000000e1")!),
            sync: .init(
                id: UUID(uuidString: "00000000-0000-0000-0000-0000000000b1")!, endpoint: "employees", status: type == .success ? "success" : "failed",
                startedAt: Date(timeIntervalSince1970: 1_763_807_400), completedAt: Date(timeIntervalSince1970: 1_763_807_525), durationSeconds: 125,
                recordsSynced: 0, recordsFailed: 12, recordsSkipped: 3, errorMessage: error, retryCount: 0, maxRetries: 3,
                retryAt: Date(timeIntervalSince1970: 1_763_807_585), triggeredBy: "scheduled"
            )
        )
    }

    @Test func anOverdueEndpointAndAStuckRunSayWhatWasExpected() async throws {
        let templates = try await AlertTemplates.load(from: Self.directory)
        let now = Date(timeIntervalSince1970: 1_763_820_000)
        // An hourly endpoint that never ran: no run, due unknown.
        var never = ClaimedAlert.Incident(
            id: UUID(uuidString: "00000000-0000-0000-0000-0000000000d1")!, openedAt: now.addingTimeInterval(-600), severity: "failure",
            resolvedAt: nil, remindersSent: 0, failedRuns: nil, recentRuns: [], lastFailedAt: nil, lastError: nil
        )
        never.kind = .overdue
        never.endpoint = "payroll"
        never.frequency = "hourly"
        never.graceSeconds = 900
        let base = Self.alert(type: .overdue)
        let overdue = ClaimedAlert(
            id: base.id, type: .overdue, channel: .email, origin: .incident, recipients: ["ops@example.com"], attempt: 1, maxAttempts: 10,
            createdAt: nil, integration: base.integration, sync: nil, incident: never
        )
        let message = templates.renderMessage(AlertContext(alert: overdue, linkBase: nil, now: now))
        #expect(message.subject == "[alertd] Sync overdue: Paycom · payroll")
        #expect(message.text.contains("The payroll sync of Paycom is overdue: no run has started since one was due."))
        #expect(message.text.contains("Schedule:    hourly"))
        #expect(message.text.contains("Due:         not known (the endpoint has never run)"))
        #expect(message.text.contains("Grace:       15 m 0 s"))
        #expect(message.text.contains("The endpoint has no run on record."))
        #expect(message.html.contains("<td>hourly</td>"))

        // Its run due 90 minutes before, and the notice when it ran again.
        var late = never
        late.expectedAt = now.addingTimeInterval(-5400)
        let withRun = ClaimedAlert(
            id: base.id, type: .overdue, channel: .email, origin: .incident, recipients: [], attempt: 1, maxAttempts: 10,
            createdAt: nil, integration: base.integration, sync: base.sync, incident: late
        )
        let lateText = templates.renderMessage(AlertContext(alert: withRun, linkBase: nil, now: now)).text
        #expect(lateText.contains("(1 h 30 m ago)"))
        #expect(lateText.contains("The last run:"))
        #expect(lateText.contains("Endpoint:    employees"))
        var closed = ClaimedAlert.Incident(
            id: never.id, openedAt: never.openedAt, severity: "failure", resolvedAt: now, remindersSent: 0,
            failedRuns: nil, recentRuns: [], lastFailedAt: nil, lastError: nil
        )
        closed.kind = .overdue
        closed.endpoint = "payroll"
        let resumed = ClaimedAlert(
            id: base.id, type: .recovery, channel: .email, origin: .incident, recipients: [], attempt: 1, maxAttempts: 10,
            createdAt: nil, integration: base.integration, sync: base.sync, incident: closed
        )
        let resumedMessage = templates.renderMessage(AlertContext(alert: resumed, linkBase: nil, now: now))
        #expect(resumedMessage.subject == "[alertd] Sync running again: Paycom · employees")
        #expect(resumedMessage.text.contains("is running again: run 00000000-0000-0000-0000-0000000000b1 started at"))

        // A stuck run: the threshold and where it came from.
        var stuck = never
        stuck.kind = .stuck
        stuck.stuckAfterSeconds = 5400
        stuck.typicalSeconds = 1800
        stuck.typicalFrom = "recent_runs"
        let running = ClaimedAlert(
            id: base.id, type: .stuck, channel: .email, origin: .incident, recipients: [], attempt: 1, maxAttempts: 10,
            createdAt: nil, integration: base.integration, sync: base.sync, incident: stuck
        )
        let stuckText = templates.renderMessage(AlertContext(alert: running, linkBase: nil, now: now)).text
        #expect(stuckText.contains("and the endpoint usually takes 30 m 0 s."))
        #expect(stuckText.contains("Stuck after: 1 h 30 m (3x the median of its recent runs)"))
    }

    @Test func everyRequiredTemplateLoads() async throws {
        let templates = try await AlertTemplates.load(from: Self.directory)
        for type in AlertTemplates.types {
            let rendered = templates.renderMessage(AlertContext(alert: Self.alert(origin: type == "test" ? .test : .trigger, type: AlertType(rawValue: type) ?? .success), linkBase: nil))
            #expect(!rendered.subject.isEmpty && !rendered.text.isEmpty && rendered.html.contains("<html>"), "\(type)")
        }
    }

    @Test func aDisabledWebhookURLsEmailSaysWhichWhySinceWhenAndHowToEnableIt() async throws {
        let templates = try await AlertTemplates.load(from: Self.directory)
        var notice = ClaimedAlert(
            id: UUID(), type: .webhookDisabled, channel: .email, origin: .destination, recipients: ["ops@example.com"], attempt: 1, maxAttempts: 10,
            createdAt: nil, integration: Self.alert().integration, sync: nil
        )
        notice.disabledDestination = .init(
            url: "https://hooks.example.com/a?x=1&y='2'", reason: "the receiver answered 410 Gone: HTTP 410: <gone>",
            disabledAt: Date(timeIntervalSince1970: 1_763_900_000), failingSince: Date(timeIntervalSince1970: 1_763_800_000),
            lastError: "HTTP 410: <gone>", undelivered: 2
        )
        let rendered = templates.renderMessage(AlertContext(alert: notice, linkBase: nil))
        #expect(rendered.subject == "[alertd] Webhook disabled: Paycom")
        #expect(rendered.text.contains("  https://hooks.example.com/a?x=1&y='2'\n"))
        #expect(rendered.text.contains("Why:         the receiver answered 410 Gone: HTTP 410: <gone>"))
        #expect(rendered.text.contains("Disabled:    2025-11-23T12:13:20Z"))
        #expect(rendered.text.contains("Failing since: 2025-11-22T08:26:40Z"))
        #expect(rendered.text.contains("Not delivered: 2 alerts to this URL"))
        #expect(rendered.text.contains(#"alertd endpoints enable 'https://hooks.example.com/a?x=1&y='\''2'\'''"#), "\(rendered.text)")
        #expect(rendered.text.contains("alertd replay --failed --since 2025-11-22T08:26:40Z"))
        #expect(rendered.html.contains("https://hooks.example.com/a?x=1&amp;y="), "\(rendered.html)")
        #expect(!rendered.html.contains("<gone>"))
        notice.disabledDestination = .init(url: "https://hooks.example.com/b", reason: "r", disabledAt: Date(), failingSince: nil, lastError: nil, undelivered: 1)
        #expect(templates.renderMessage(AlertContext(alert: notice, linkBase: nil)).text.contains("Not delivered: 1 alert to this URL"))
    }

    @Test func aFailureSaysWhatHappened() async throws {
        let templates = try await AlertTemplates.load(from: Self.directory)
        let rendered = templates.renderMessage(AlertContext(alert: Self.alert(), linkBase: "https://etl.example.com/"))
        #expect(rendered.subject == "[alertd] Sync failed: Paycom · employees")
        #expect(rendered.text.contains("Integration: Paycom (paycom, production)"))
        #expect(rendered.text.contains("Finished:    2025-11-22T10:32:05Z (2 m 5 s)"))
        #expect(rendered.text.contains("Records:     0 synced, 12 failed, 3 skipped"))
        #expect(rendered.text.contains("HTTP 401 from Paycom"))
        #expect(rendered.text.contains("Retry 1 of 3 is scheduled for 2025-11-22T10:33:05Z."))
        #expect(rendered.text.contains("Details: https://etl.example.com/integrations/00000000-0000-0000-0000-0000000000c1/syncs/00000000-0000-0000-0000-0000000000b1"))
    }

    static let hostile = "Quote \" backslash \\ newline\r\nBcc: victim@example.com\ttab <script>alert('x')</script> & ünïcode 🚨 \u{0}\u{1b}[31m \u{2028}"

    @Test func hostileTextIsEscapedInHTMLAndJSONAndKeptToOneLineInSubjects() async throws {
        let templates = try await AlertTemplates.load(from: Self.directory)
        let context = AlertContext(alert: Self.alert(error: Self.hostile, name: "Evil\r\nSubject: injected"), linkBase: nil)
        let rendered = templates.renderMessage(context)
        #expect(!rendered.subject.contains("\r") && !rendered.subject.contains("\n"))
        #expect(rendered.subject == "[alertd] Sync failed: Evil Subject: injected · employees")
        #expect(!rendered.html.contains("<script>"))
        #expect(rendered.html.contains("&lt;script&gt;"))
        let body = try templates.renderWebhookBody(context)
        let json = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        let data = try #require(json["data"] as? [String: Any])
        let sync = try #require(data["sync"] as? [String: Any])
        #expect(sync["error_message"] as? String == Self.hostile)
        #expect((data["integration"] as? [String: Any])?["name"] as? String == "Evil\r\nSubject: injected")
        #expect(json["type"] as? String == "sync.failure")
        #expect((sync["records"] as? [String: Any])?["failed"] as? Int == 12)
        #expect(sync["duration_seconds"] as? Int == 125)
        #expect(((data["alert"] as? [String: Any])?["test"] as? Bool) == false)
    }

    /// A subject is one header line: breaks, tabs and other control characters become one space,
    /// spaces are squeezed and trimmed, and a long one is cut with an ellipsis.
    @Test func subjectsAreFoldedToOneTrimmedLine() {
        let cases: [(String, String)] = [
            ("", ""),
            ("   ", ""),
            ("plain", "plain"),
            ("  Sync failed:\r\n  Paycom\t\t·  employees \n", "Sync failed: Paycom · employees"),
            ("a\u{0}b\u{7F}c\u{1B}[31m", "a b c [31m"),
            ("\u{A0}\u{2003}x\u{2028}y\u{2029}\u{3000}", "x y"),
            ("e\u{301} \u{1F600}\n", "e\u{301} \u{1F600}"),
        ]
        for (text, expected) in cases {
            #expect(AlertTemplates.singleLine(text, limit: 250) == expected, "\(text.debugDescription)")
        }
        #expect(AlertTemplates.singleLine(String(repeating: "ab ", count: 100), limit: 250) == String(String(repeating: "ab ", count: 100).prefix(249)) + "…")
        #expect(AlertTemplates.singleLine(String(repeating: "x", count: 250), limit: 250).count == 250)
        #expect(AlertTemplates.singleLine(String(repeating: "x", count: 251), limit: 250).hasSuffix("x…"))
    }

    /// The byte check that lets a subject already on one line through untouched says yes only
    /// where folding would change nothing, and no to everything folding would change.
    @Test func theOneLineFastPathTakesOnlyWhatFoldingWouldLeaveAlone() {
        for text in ["Sync failed: Paycom · employees", " lead", "trail ", "two  spaces", "tab\there", "bell\u{7}", "del\u{7F}", "", "e\u{301}"] {
            #expect(!AlertTemplates.isSingleLineASCII(text, limit: 250), "\(text.debugDescription)")
        }
        for text in ["Paycom (production): sync of employees failed", "a", "x y z", String(repeating: "x", count: 250)] {
            #expect(AlertTemplates.isSingleLineASCII(text, limit: 250), "\(text.debugDescription)")
            #expect(AlertTemplates.singleLine(text, limit: 250) == text)
        }
        #expect(!AlertTemplates.isSingleLineASCII(String(repeating: "x", count: 251), limit: 250))
        // Every printable ASCII string of up to three characters: the fast path agrees with folding.
        let alphabet = [" ", "a", "~", "!"]
        for a in alphabet { for b in alphabet { for c in alphabet {
            let text = a + b + c
            if AlertTemplates.isSingleLineASCII(text, limit: 250) {
                #expect(!text.hasPrefix(" ") && !text.hasSuffix(" ") && !text.contains("  "), "\(text.debugDescription)")
            } else {
                #expect(text.hasPrefix(" ") || text.hasSuffix(" ") || text.contains("  "), "\(text.debugDescription)")
            }
        } } }
    }

    @Test func longErrorsAreCutAndSaySo() async throws {
        let templates = try await AlertTemplates.load(from: Self.directory)
        let context = AlertContext(alert: Self.alert(error: String(repeating: "x", count: 1_000_000)), linkBase: nil)
        let rendered = templates.renderMessage(context)
        #expect(rendered.text.contains("[truncated]"))
        #expect(rendered.text.count < 5_000)
        let json = try JSONSerialization.jsonObject(with: try templates.renderWebhookBody(context)) as? [String: Any]
        let sync = (json?["data"] as? [String: Any])?["sync"] as? [String: Any]
        #expect(sync?["error_truncated"] as? Bool == true)
    }

    @Test func aWebhookForAnAlertWithoutARunIsStillJSON() async throws {
        let templates = try await AlertTemplates.load(from: Self.directory)
        let bare = ClaimedAlert(id: UUID(), type: .success, channel: .webhook, origin: .test, recipients: [], attempt: 1, maxAttempts: 1, createdAt: nil, integration: nil, sync: nil)
        let json = try JSONSerialization.jsonObject(with: try templates.renderWebhookBody(AlertContext(alert: bare, linkBase: nil))) as? [String: Any]
        #expect(json?["type"] as? String == "sync.test")
        #expect((json?["data"] as? [String: Any])?["sync"] is NSNull)
    }

    /// The stock webhook.json opens each object with a section on it (`{{#sync}}...{{/sync}}`),
    /// which renders several times faster than the earlier form, whose every name walked the
    /// context from a pushed string (`{{#sync.id}}...{{sync.endpoint}}`). Its output must not
    /// change by a byte: compared with the earlier template over every shape of context.
    @Test func theWebhookBodyIsByteForByteWhatTheEarlierTemplateGave() async throws {
        let current = try await AlertTemplates.load(from: Self.directory)
        let earlier = try await AlertTemplates.load(from: try Self.copyOfTemplates { copy in
            try FileManager.default.removeItem(at: copy.appending(path: "webhook.json.mustache"))
            try FileManager.default.copyItem(
                at: TestPostgres.packageRoot.appending(path: "Tests/AlertdKitTests/Fixtures/webhook.json.before-sections.mustache"),
                to: copy.appending(path: "webhook.json.mustache")
            )
        })
        let full = Self.alert()
        let hostile = Self.alert(error: Self.hostile, name: Self.hostile)
        let success = Self.alert(type: .success, error: nil)
        var sparse = Self.alert(error: "")
        sparse = ClaimedAlert(
            id: sparse.id, type: .warning, channel: .webhook, origin: .trigger, recipients: sparse.recipients, attempt: 1, maxAttempts: 3, createdAt: nil,
            integration: .init(id: UUID(), name: nil, type: "adp", environment: "sandbox", tenantID: UUID()),
            sync: .init(
                id: UUID(), endpoint: "payroll", status: "partial", startedAt: Date(timeIntervalSince1970: 1_763_807_400), completedAt: nil, durationSeconds: nil,
                recordsSynced: 5, recordsFailed: 1, recordsSkipped: 0, errorMessage: nil, retryCount: 3, maxRetries: 3, retryAt: nil, triggeredBy: "manual"
            )
        )
        let test = ClaimedAlert.test(channel: .webhook, recipients: ["https://hooks.example.com/t"])
        let now = Date(timeIntervalSince1970: 1_763_807_600)
        for alert in [full, hostile, success, sparse, test] {
            for link in [nil, "https://app.example.com/"] {
                let context = AlertContext(alert: alert, linkBase: link, now: now)
                // Added since: the alert's incident, its group, what an overdue endpoint or a stuck
                // run was expected to do, and what a limit held, null for an alert without.
                let mine = String(decoding: try current.renderWebhookBody(context), as: UTF8.self)
                    .replacingOccurrences(of: "\n    \"incident\": null,", with: "")
                    .replacingOccurrences(of: "\n    \"group\": null,", with: "")
                    .replacingOccurrences(of: "\n    \"overdue\": null,", with: "")
                    .replacingOccurrences(of: "\n    \"stuck\": null,", with: "")
                    .replacingOccurrences(of: "\n    \"held\": null,", with: "")
                let theirs = String(decoding: try earlier.renderWebhookBody(context), as: UTF8.self)
                #expect(mine == theirs, "\(alert.type) \(alert.origin) link \(link ?? "none"):\n\(mine)\n---\n\(theirs)")
            }
        }
    }

    /// Alerts of every shape, with every character a tenant can type in each text: for the
    /// parts alertd writes without Mustache, which must give the stock templates' text exactly.
    static func everyShapeOfAlert() throws -> [ClaimedAlert] {
        var strings = [Self.hostile, "", "plain", "\u{2029}\u{2028}x\u{2027}\u{202A}", "€ 🚨 日本語", String(repeating: "é", count: 2_100)]
        strings.append(String((0..<128).map { Character(Unicode.Scalar(UInt8($0))) }))
        var alerts: [ClaimedAlert] = [ClaimedAlert.test(channel: .webhook, recipients: ["https://hooks.example.com/t"])]
        for (n, text) in strings.enumerated() {
            for type in AlertType.allCases {
                let full = Self.alert(type: type, error: text, name: text)
                let sync = try #require(full.sync)
                let integration = try #require(full.integration)
                alerts.append(full)
                alerts.append(ClaimedAlert(
                    id: UUID(), type: type, channel: .webhook, origin: n % 2 == 0 ? .trigger : .manual, recipients: [], attempt: n + 1, maxAttempts: 10, createdAt: nil,
                    integration: n % 3 == 0 ? nil : .init(id: integration.id, name: n % 2 == 0 ? nil : text, type: text, environment: text, tenantID: integration.tenantID),
                    sync: n % 4 == 3 ? nil : .init(
                        id: sync.id, endpoint: text, status: n % 2 == 0 ? "failed" : type.rawValue, startedAt: sync.startedAt, completedAt: n % 2 == 0 ? nil : sync.completedAt,
                        durationSeconds: n % 2 == 0 ? nil : -n, recordsSynced: Int.max, recordsFailed: Int.min, recordsSkipped: n, errorMessage: n % 3 == 1 ? nil : text,
                        retryCount: n % 3, maxRetries: 2, retryAt: n % 2 == 0 ? sync.retryAt : nil, triggeredBy: text
                    )
                ))
                // With an incident: open or closed, its runs counted or not, none to three of
                // them listed, its last error any text or none.
                let runs = (0..<(n % 4)).map { _ in UUID() }
                alerts.append(ClaimedAlert(
                    id: UUID(), type: type, channel: .webhook, origin: .trigger, recipients: [], attempt: 1, maxAttempts: 10, createdAt: nil,
                    integration: full.integration, sync: full.sync,
                    incident: .init(
                        id: UUID(), openedAt: sync.startedAt.addingTimeInterval(-Double(n) * 40_000), severity: n % 2 == 0 ? "failure" : "warning",
                        resolvedAt: n % 2 == 0 ? nil : sync.startedAt, remindersSent: n, failedRuns: n % 3 == 0 ? nil : n,
                        recentRuns: runs, lastFailedAt: n % 3 == 0 ? nil : sync.startedAt, lastError: n % 3 == 2 ? nil : text
                    )
                ))
                // An overdue endpoint's or a stuck run's: the news, a reminder or the notice, with
                // and without a run, what was expected known or not.
                if [.overdue, .stuck, .reminder, .recovery].contains(type) {
                    for kind in [ClaimedAlert.Incident.Kind.overdue, .stuck] where type != (kind == .overdue ? .stuck : .overdue) {
                        var incident = ClaimedAlert.Incident(
                            id: UUID(), openedAt: sync.startedAt.addingTimeInterval(3600), severity: "failure",
                            resolvedAt: type == .recovery ? sync.startedAt.addingTimeInterval(7200) : nil, remindersSent: n % 3,
                            failedRuns: nil, recentRuns: [], lastFailedAt: nil, lastError: nil
                        )
                        incident.kind = kind
                        incident.endpoint = text
                        if kind == .overdue {
                            incident.expectedAt = n % 2 == 0 ? sync.startedAt.addingTimeInterval(3600) : nil
                            incident.frequency = n % 3 == 0 ? "hourly" : text
                            incident.graceSeconds = 900
                        } else {
                            incident.stuckAfterSeconds = 5400
                            incident.typicalSeconds = n % 2 == 0 ? 1800 : nil
                            incident.typicalFrom = n % 2 == 0 ? "recent_runs" : nil
                        }
                        alerts.append(ClaimedAlert(
                            id: UUID(), type: type, channel: .webhook, origin: .incident, recipients: [], attempt: 1, maxAttempts: 10, createdAt: nil,
                            integration: n % 3 == 0 ? nil : full.integration, sync: kind == .overdue && n % 2 == 1 ? nil : full.sync, incident: incident
                        ))
                    }
                }
                // A notice of alerts held by the integration's message limit: one or many, of
                // one type or several, with and without when they were held.
                if type == .held {
                    var notice = ClaimedAlert(
                        id: UUID(), type: .held, channel: n % 2 == 0 ? .webhook : .email, origin: .limit, recipients: [], attempt: 1, maxAttempts: 10, createdAt: nil,
                        integration: n % 3 == 0 ? nil : full.integration, sync: nil
                    )
                    notice.heldNotice = .init(
                        integrationID: integration.id, count: n + 1, limit: 120 + n, windowStart: sync.startedAt, windowEnd: sync.startedAt.addingTimeInterval(3600),
                        firstHeldAt: n % 2 == 0 ? sync.startedAt : nil, lastHeldAt: n % 2 == 0 ? sync.startedAt.addingTimeInterval(60) : nil,
                        types: n % 2 == 0 ? ["failure": n + 1] : ["success": 1, "failure": n]
                    )
                    alerts.append(notice)
                }
                // Leading a group's message: one to three other endpoints, any text, with and
                // without errors.
                if type == .failure || type == .warning {
                    var leader = Self.alert(type: type, error: n % 2 == 0 ? text : nil, name: text)
                    leader.groupKey = "group"
                    leader.grouped = (0...(n % 3)).map { k in
                        ClaimedAlert(
                            id: UUID(), type: type, channel: .webhook, origin: .trigger, recipients: [], attempt: 1, maxAttempts: 10, createdAt: nil,
                            integration: full.integration, sync: .init(
                                id: UUID(), endpoint: k == 0 ? text : "endpoint \(k)", status: k == 1 ? "partial" : "failed", startedAt: sync.startedAt,
                                completedAt: nil, durationSeconds: nil, recordsSynced: k, recordsFailed: n, recordsSkipped: 0,
                                errorMessage: k == 1 ? nil : text, retryCount: 0, maxRetries: 0, retryAt: nil, triggeredBy: "scheduler"
                            )
                        )
                    }
                    alerts.append(leader)
                }
            }
        }
        return alerts
    }

    /// The stock webhook.json is written by `StockWebhookBody`, not Mustache: it must give the
    /// template's bytes exactly, for every shape of alert and every character a tenant can type.
    @Test func theBuiltInWebhookBodyIsByteForByteTheStockTemplate() async throws {
        let templates = try await AlertTemplates.load(from: Self.directory)
        #expect(templates.stockWebhook, "templates/webhook.json.mustache differs from StockWebhookBody.template")
        let now = Date(timeIntervalSince1970: 1_763_807_600)
        let alerts = try Self.everyShapeOfAlert()
        for alert in alerts {
            for link in [nil, "", "https://app.example.com/", "https://app.example.com/\"q\""] {
                let context = AlertContext(alert: alert, linkBase: link, now: now)
                let builtIn = try templates.renderWebhookBody(context)
                let mustache = templates.renderWebhookBodyThroughMustache(context)
                #expect(String(decoding: builtIn, as: UTF8.self) == mustache, "\(alert.type) \(alert.origin) link \(link ?? "none")")
                #expect((try? JSONSerialization.jsonObject(with: builtIn)) != nil)
            }
        }
    }

    /// The stock subjects are written by `StockSubjects`, not Mustache: the same text, for every
    /// type and shape of alert.
    @Test func theBuiltInSubjectsAreTheStockTemplatesText() async throws {
        let templates = try await AlertTemplates.load(from: Self.directory)
        #expect(templates.stockSubjects == Set(AlertTemplates.types), "a templates/*.subject.mustache differs from StockSubjects.templates")
        var alerts = try Self.everyShapeOfAlert()
        for name in [nil, "", "Paycom"] as [String?] {
            alerts.append(ClaimedAlert(
                id: UUID(), type: .failure, channel: .email, origin: .test, recipients: [], attempt: 1, maxAttempts: 1, createdAt: nil,
                integration: .init(id: UUID(), name: name, type: "paycom", environment: "production", tenantID: UUID()), sync: nil
            ))
        }
        #expect(Set(alerts.map { AlertContext(alert: $0, linkBase: nil).templateType }) == Set(AlertTemplates.types))
        for alert in alerts {
            let context = AlertContext(alert: alert, linkBase: nil)
            #expect(StockSubjects.render(context) == templates.renderSubjectThroughMustache(context), "\(context.templateType): \(alert.integration?.name ?? "nil")")
        }
    }

    @Test func anEditedWebhookTemplateRendersThroughMustache() async throws {
        let edited = try Self.copyOfTemplates { copy in
            try "{{% CONTENT_TYPE: JSON}}\n{\"id\": \"{{alert.id}}\", \"name\": \"{{integration.name}}\"}\n".write(to: copy.appending(path: "webhook.json.mustache"), atomically: true, encoding: .utf8)
        }
        defer { try? FileManager.default.removeItem(at: edited) }
        let templates = try await AlertTemplates.load(from: edited)
        #expect(!templates.stockWebhook)
        let body = String(decoding: try templates.renderWebhookBody(AlertContext(alert: Self.alert(name: "Pay\"com"), linkBase: nil)), as: UTF8.self)
        #expect(body == "{\"id\": \"00000000-0000-0000-0000-0000000000a1\", \"name\": \"Pay\\\"com\"}\n")
    }

    static func copyOfTemplates(_ edit: (URL) throws -> Void) throws -> URL {
        let copy = FileManager.default.temporaryDirectory.appending(path: "alertd-templates-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: directory, to: copy)
        try edit(copy)
        return copy
    }

    @Test func aTemplateThatDoesNotParseIsReportedAtLoadNamingTheFile() async throws {
        let broken = try Self.copyOfTemplates { copy in
            try "{{#sync}}unclosed section".write(to: copy.appending(path: "failure.text.mustache"), atomically: true, encoding: .utf8)
        }
        defer { try? FileManager.default.removeItem(at: broken) }
        let error = await #expect(throws: AlertdError.self) {
            try await AlertTemplates.load(from: broken)
        }
        if let error {
            #expect(error.message.contains("failure.text.mustache"))
        }
    }

    @Test func aMissingTemplateIsReportedAtLoad() async throws {
        let incomplete = try Self.copyOfTemplates { copy in
            try FileManager.default.removeItem(at: copy.appending(path: "webhook.json.mustache"))
        }
        defer { try? FileManager.default.removeItem(at: incomplete) }
        await #expect(throws: AlertdError.self) { _ = try await AlertTemplates.load(from: incomplete) }
    }

    @Test func aBrokenWebhookOverrideFailsClearlyInsteadOfSendingGarbage() async throws {
        let broken = try Self.copyOfTemplates { copy in
            try "{\"name\": {{integration.name}}}".write(to: copy.appending(path: "webhook.json.mustache"), atomically: true, encoding: .utf8)
        }
        defer { try? FileManager.default.removeItem(at: broken) }
        let templates = try await AlertTemplates.load(from: broken)
        #expect(throws: AlertdError.self) { try templates.renderWebhookBody(AlertContext(alert: Self.alert(), linkBase: nil)) }
    }
}
