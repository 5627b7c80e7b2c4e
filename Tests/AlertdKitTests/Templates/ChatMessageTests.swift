@testable import AlertdKit
import AlertdTestSupport
import Foundation
import Testing

/// Chat formats without a server: which URL gets which, and Slack's message within Slack's
/// documented limits and escaping, for every shape of alert.
@Suite struct ChatMessageTests {
    @Test func theURLDecidesTheFormatAndAnIntegrationMayNameOne() {
        #expect(WebhookFormat.detect("https://hooks.slack.com/services/T000/B000/XXXX") == .format(.slack))
        #expect(WebhookFormat.detect("https://HOOKS.SLACK.COM/services/T000/B000/XXXX") == .format(.slack))
        #expect(WebhookFormat.detect("https://hooks.slack.com.example.com/services/x") == .format(.standard))
        #expect(WebhookFormat.detect("https://example.com/hooks.slack.com") == .format(.standard))
        #expect(WebhookFormat.detect("https://receiver.example.com/alertd") == .format(.standard))
        if case .retired(let reason) = WebhookFormat.detect("https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456") {
            #expect(reason.contains("Office 365 connector") && reason.contains("Workflows"))
        } else {
            Issue.record("an Office 365 connector URL is not refused")
        }
        #expect(WebhookFormat.detect("https://outlook.office.com/webhook/abc") != .format(.standard))
        #expect(WebhookFormat.named("slack") == .slack && WebhookFormat.named(" Mattermost ") == .slack && WebhookFormat.named("rocketchat") == .slack)
        #expect(WebhookFormat.named("standard") == .standard && WebhookFormat.named("carrier-pigeon") == nil && WebhookFormat.named(nil) == nil)
    }

    @Test func slackAnswersThatSayTheWebhookIsGoneAreFinalAndDisableIt() {
        for (status, body) in [(410, "channel_is_archived"), (404, "no_service"), (403, "action_prohibited")] {
            let answer = WebhookResponse.answered(status: status, retryAfter: nil, body: body)
            guard case .failed(let reason) = answer.decision(format: .slack) else {
                Issue.record("\(status) \(body) is not final")
                continue
            }
            #expect(reason.contains(body) && reason.contains("create a new incoming webhook"))
            #expect(answer.signal(format: .slack) == .gone(reason: "HTTP \(status): \(body)"))
            // The same answer from a receiver of the standard JSON is judged as before.
            #expect(answer.signal(format: .standard) != .gone(reason: "HTTP \(status): \(body)") || status == 410)
        }
        #expect(WebhookResponse.answered(status: 200, retryAfter: nil, body: "ok").decision(format: .slack) == .delivered)
        #expect(WebhookResponse.answered(status: 400, retryAfter: nil, body: "invalid_payload").decision(format: .slack) == .failed(reason: "HTTP 400: invalid_payload"))
        if case .retry = WebhookResponse.answered(status: 429, retryAfter: "30", body: "rate_limited").decision(format: .slack) {} else {
            Issue.record("a 429 from Slack is not retried")
        }
    }

    @Test func cuttingKeepsToTheLimitInUTF16AndNeverSplitsAnEscape() {
        #expect(ChatMessage.cut("short", 10) == "short")
        let cut = ChatMessage.cut(String(repeating: "🚨", count: 100), 50)
        #expect(cut.utf16.count <= 50 && cut.hasSuffix(" …[cut]"))
        let escaped = ChatMessage.cut(String(repeating: "a", count: 42) + "&amp;&amp;", 50)
        #expect(escaped == String(repeating: "a", count: 42) + " …[cut]")
        #expect(ChatMessage.slackEscaped("<@U123> & <!channel>") == "&lt;@U123&gt; &amp; &lt;!channel&gt;")
    }

    /// Every block of a Slack message alertd renders, for every shape of alert and every hostile
    /// text, keeps Slack's documented limits, and its mrkdwn has no bare `<`, `>` or `&`.
    @Test func everySlackMessageKeepsSlacksLimitsAndEscaping() async throws {
        let templates = try await AlertTemplates.load(from: AlertTemplatesTests.directory)
        var alerts = try AlertTemplatesTests.everyShapeOfAlert()
        alerts.append(ClaimedAlert.test(channel: .webhook, recipients: ["https://hooks.slack.com/services/T/B/X"]))
        for alert in alerts {
            for link in [nil, "https://app.example.com/"] {
                let body = try templates.renderChat(.slack, AlertContext(alert: alert, linkBase: link))
                let message = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
                let blocks = try #require(message["blocks"] as? [[String: Any]])
                #expect(blocks.count <= 50)
                var texts: [(String, String, Int)] = [("text", try #require(message["text"] as? String), 40_000)]
                for block in blocks {
                    let type = try #require(block["type"] as? String)
                    if let text = block["text"] as? [String: Any] {
                        texts.append((text["type"] as? String ?? "?", text["text"] as? String ?? "", type == "header" ? 150 : 3000))
                    }
                    if let fields = block["fields"] as? [[String: Any]] {
                        #expect((1...10).contains(fields.count))
                        for field in fields { texts.append(("mrkdwn", field["text"] as? String ?? "", 2000)) }
                    }
                    for element in block["elements"] as? [[String: Any]] ?? [] {
                        if let text = element["text"] as? String { texts.append((element["type"] as? String ?? "?", text, 3000)) }
                        if let text = element["text"] as? [String: Any] { texts.append(("plain_text", text["text"] as? String ?? "", 75)) }
                    }
                }
                for (kind, text, limit) in texts {
                    #expect(!text.isEmpty && text.utf16.count <= limit, "\(alert.type): a \(kind) of \(text.utf16.count) characters, limit \(limit)")
                    if kind == "mrkdwn" || kind == "text" {
                        #expect(!text.contains("<") && !text.contains(">"), "\(alert.type): bare < or > in \(text.prefix(80))")
                        #expect(!text.replacingOccurrences(of: "&amp;", with: "").replacingOccurrences(of: "&lt;", with: "").replacingOccurrences(of: "&gt;", with: "").contains("&"))
                    }
                }
            }
        }
    }

    @Test func aSlackMessageSaysWhatHappenedAndLinksTheRun() async throws {
        let templates = try await AlertTemplates.load(from: AlertTemplatesTests.directory)
        let body = try templates.renderChat(.slack, AlertContext(alert: AlertTemplatesTests.alert(), linkBase: "https://etl.example.com/"))
        let text = String(decoding: body, as: UTF8.self)
        #expect(text.contains(#""text": "[alertd] Sync failed: Paycom · employees""#))
        #expect(text.contains("The employees sync of Paycom failed."))
        #expect(text.contains(#"*Records*\n0 synced, 12 failed"#))
        #expect(text.contains("```HTTP 401 from Paycom```"))
        #expect(text.contains(#""url": "https://etl.example.com/integrations/00000000-0000-0000-0000-0000000000c1/syncs/00000000-0000-0000-0000-0000000000b1""#))
    }
}
