import Foundation

/// How a webhook URL's messages are written: the Standard Webhooks JSON alertd signs, or a chat
/// service's own message, so that an incoming-webhook URL pasted into `alert_webhook_url` shows
/// alerts the way its service shows messages. The URL decides (`detect`); an integration can
/// name one in `configuration_metadata -> 'alertd' ->> 'webhook_format'` (a self-hosted
/// Slack-compatible service, say, or `standard` to keep the JSON).
public enum WebhookFormat: String, Sendable, CaseIterable {
    case standard
    /// Slack incoming webhooks (`hooks.slack.com`), and Slack-compatible ones (Mattermost,
    /// Rocket.Chat) by the override.
    case slack
    /// Discord's webhooks (`discord.com/api/webhooks/...`, also `discordapp.com`).
    case discord
    /// Microsoft Teams through a Workflows (Power Automate) webhook: an Adaptive Card in a
    /// `message`'s `attachments`.
    case teams
    /// Google Chat's incoming webhooks (`chat.googleapis.com/v1/spaces/.../messages`): a card.
    case googleChat = "google_chat"

    /// What a URL calls for.
    public enum Detection: Sendable, Equatable {
        case format(WebhookFormat)
        /// A URL of a service that no longer takes messages there: why, and what to use instead.
        case retired(String)
    }

    /// The format `url` calls for: Slack's incoming webhooks by their host; Discord's, Google
    /// Chat's and Teams' Workflows (`*.logic.azure.com/workflows/...`,
    /// `*.api.powerplatform.com/.../workflows/...`) by host and path; Microsoft's retired Office
    /// 365 connector URLs refused with the reason; every other URL the standard JSON.
    public static func detect(_ url: String) -> Detection {
        guard let components = URLComponents(string: url), let host = components.host?.lowercased() else { return .format(.standard) }
        let path = components.path.lowercased()
        if host == "hooks.slack.com" { return .format(.slack) }
        if ["discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"].contains(host),
           path.hasPrefix("/api/webhooks/") || path.range(of: #"^/api/v[0-9]+/webhooks/"#, options: .regularExpression) != nil {
            return .format(.discord)
        }
        if host == "chat.googleapis.com", path.range(of: #"^/v1/spaces/[^/]+/messages$"#, options: .regularExpression) != nil {
            return .format(.googleChat)
        }
        if (host.hasSuffix(".logic.azure.com") && path.contains("/workflows/") && path.contains("/triggers/"))
            || (host.hasSuffix(".api.powerplatform.com") && path.contains("/workflows/")) {
            return .format(.teams)
        }
        if (host.hasSuffix(".webhook.office.com") && path.hasPrefix("/webhookb2/")) || (host == "outlook.office.com" && path.hasPrefix("/webhook/")) {
            return .retired(
                "This is a Microsoft Teams Office 365 connector URL: Microsoft retired those connectors, and they no longer deliver messages. In Teams, create a webhook with the Workflows app (\"Post to a channel when a webhook request is received\") and put its URL in the integration's alert_webhook_url."
            )
        }
        return .format(.standard)
    }

    /// The format an integration names in its settings (`webhook_format`); nil when it names none
    /// or one alertd does not know (the URL then decides).
    public static func named(_ name: String?) -> WebhookFormat? {
        guard let name = name?.trimmingCharacters(in: .whitespaces).lowercased(), !name.isEmpty else { return nil }
        switch name {
        case "mattermost", "rocketchat", "rocket.chat": return .slack
        case "msteams", "microsoft_teams", "microsoft-teams", "workflows": return .teams
        case "googlechat", "google-chat", "gchat": return .googleChat
        default: return WebhookFormat(rawValue: name)
        }
    }
}
