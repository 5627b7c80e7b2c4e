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

    @Test func discordURLsAndAnswers() {
        #expect(WebhookFormat.detect("https://discord.com/api/webhooks/123/abc") == .format(.discord))
        #expect(WebhookFormat.detect("https://discordapp.com/api/webhooks/123/abc") == .format(.discord))
        #expect(WebhookFormat.detect("https://canary.discord.com/api/v10/webhooks/123/abc") == .format(.discord))
        #expect(WebhookFormat.detect("https://discord.com/channels/123") == .format(.standard))
        #expect(WebhookFormat.named("discord") == .discord)
        let unknown = WebhookResponse.answered(status: 404, retryAfter: nil, body: #"{"message": "Unknown Webhook", "code": 10015}"#)
        #expect(unknown.signal(format: .discord) == .gone(reason: #"HTTP 404: {"message": "Unknown Webhook", "code": 10015}"#))
        guard case .failed(let reason) = unknown.decision(format: .discord) else { Issue.record("404 is not final"); return }
        #expect(reason.contains("Discord says this webhook does not exist any more"))
        let limited = WebhookResponse.answered(status: 429, retryAfter: "1", body: #"{"message": "You are being rate limited.", "retry_after": 64.57, "global": false}"#)
        #expect(limited.decision(format: .discord) == .retry(reason: #"HTTP 429: {"message": "You are being rate limited.", "retry_after": 64.57, "global": false}"#, notBefore: .milliseconds(64_570)))
        #expect(limited.signal(format: .discord)?.retryAfter == .milliseconds(64_570))
        #expect(WebhookResponse.answered(status: 204, retryAfter: nil, body: "").decision(format: .discord) == .delivered)
    }

    /// Every Discord message alertd renders keeps Discord's documented limits, has no empty field,
    /// and can ping nobody.
    @Test func everyDiscordMessageKeepsDiscordsLimitsAndPingsNobody() async throws {
        let templates = try await AlertTemplates.load(from: AlertTemplatesTests.directory)
        var alerts = try AlertTemplatesTests.everyShapeOfAlert()
        alerts.append(ClaimedAlert.test(channel: .webhook, recipients: ["https://discord.com/api/webhooks/1/x"]))
        alerts.append(AlertTemplatesTests.alert(error: "@everyone <@&123> @here ``` <#9>", name: "@here <@456>"))
        for alert in alerts {
            let body = try templates.renderChat(.discord, AlertContext(alert: alert, linkBase: "https://app.example.com/"))
            let message = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
            #expect((message["allowed_mentions"] as? [String: Any])?["parse"] as? [Any] != nil)
            let content = try #require(message["content"] as? String)
            #expect(!content.isEmpty && content.count <= 2000)
            let embed = try #require((message["embeds"] as? [[String: Any]])?.first)
            let title = try #require(embed["title"] as? String), description = try #require(embed["description"] as? String)
            let footer = try #require((embed["footer"] as? [String: Any])?["text"] as? String)
            let fields = try #require(embed["fields"] as? [[String: Any]])
            #expect(title.count <= 256 && description.count <= 4096 && footer.count <= 2048 && fields.count <= 25)
            var total = title.count + description.count + footer.count
            var texts = [content, title, description, footer]
            for field in fields {
                let name = field["name"] as? String ?? "", value = field["value"] as? String ?? ""
                #expect(!name.isEmpty && name.count <= 256 && !value.isEmpty && value.count <= 1024, "\(alert.type): field \(name)")
                total += name.count + value.count
                texts += [name, value]
            }
            #expect(total <= 6000, "\(alert.type): \(total) characters in the embed")
            for text in texts {
                #expect(!text.contains("@everyone") && !text.contains("@here") && text.range(of: #"<@[!&]?[0-9]+>"#, options: .regularExpression) == nil)
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
