import Foundation

/// What a chat message says of an alert, before any service's layout: one headline, the facts
/// as named fields, the error, the other endpoints of a grouped message, the link, a footer.
/// Each service's values (`slackValues`) are cut to its documented limits, with a marker, and
/// escaped by its rules; its stock template (`templates/<format>.json.mustache`) lays them out.
struct ChatMessage {
    /// What happened, as the services colour it: red a failure, amber a warning, orange what is
    /// still wrong (a reminder, an overdue endpoint, a stuck run), blue a test, green what went
    /// right.
    enum Tone {
        case failure, warning, stillWrong, test, good

        init(_ templateType: String) {
            self = switch templateType {
            case "failure": .failure
            case "warning": .warning
            case "reminder", "overdue", "stuck": .stillWrong
            case "test": .test
            default: .good
            }
        }
    }

    let title: String
    let headline: String
    let fields: [(name: String, value: String)]
    let error: String?
    /// The other endpoints a grouped message carries, one line each.
    let others: [String]
    let link: String?
    let footer: String

    init(_ context: AlertContext, subject: String) {
        let alert = context.alert
        let integration = alert.integration.map { $0.name ?? $0.type } ?? "alertd"
        let endpoint = alert.endpoint ?? "its endpoint"
        title = subject
        switch context.templateType {
        case "test": headline = "A test notification from alertd: messages from this integration's alerts will arrive here."
        case "warning": headline = "The \(endpoint) sync of \(integration) partly failed."
        case "success": headline = "The \(endpoint) sync of \(integration) succeeded."
        case "recovery": headline = "The \(endpoint) sync of \(integration) recovered after \(AlertContext.duration(context.failingSeconds ?? 0))\(alert.incident?.failedRuns.map { " and \($0) failed run\($0 == 1 ? "" : "s")" } ?? "")."
        case "reminder": headline = "The \(endpoint) sync of \(integration) is still failing, for \(AlertContext.duration(context.failingSeconds ?? 0)) now."
        case "overdue": headline = "The \(endpoint) sync of \(integration) did not start\(context.overdue?.expectedAt.map { ": it was due \($0)" } ?? "")."
        case "resumed": headline = "The \(endpoint) sync of \(integration) is running again."
        case "stuck": headline = "The \(endpoint) sync of \(integration) looks stuck: running for \(AlertContext.duration(context.stuck?.runningSeconds ?? 0))."
        case "held":
            let held = alert.heldNotice
            headline = "\(held?.count ?? 0) alert\(held?.count == 1 ? " was" : "s were") held, not sent: \(integration) reached its limit of \(held?.limit ?? 0) \(alert.channel.rawValue) messages between \(held.map { AlertContext.timestamp($0.windowStart) } ?? "?") and \(held.map { AlertContext.timestamp($0.windowEnd) } ?? "?")."
        case "stuck_ended": headline = "The stuck \(endpoint) sync of \(integration) ended\(alert.sync.map { ": \($0.status)" } ?? "")."
        default: headline = "The \(endpoint) sync of \(integration) failed."
        }
        var fields: [(String, String)] = []
        if let value = alert.integration {
            fields.append(("Integration", "\(value.name ?? value.type) (\(value.type), \(value.environment))"))
        }
        if let endpoint = alert.endpoint { fields.append(("Endpoint", endpoint)) }
        if let sync = alert.sync {
            fields.append(("Status", sync.status))
            fields.append(("Records", "\(sync.recordsSynced) synced, \(sync.recordsFailed) failed"))
            fields.append(("Started", AlertContext.timestamp(sync.startedAt)))
        }
        if let retry = context.retry { fields.append(("Retry", "\(retry.number) of \(retry.max) at \(retry.nextAt)")) }
        if let overdue = context.overdue {
            fields.append(("Schedule", overdue.frequency))
            fields.append(("Grace", AlertContext.duration(overdue.graceSeconds)))
        }
        if let stuck = context.stuck {
            fields.append(("Stuck after", AlertContext.duration(stuck.afterSeconds)))
            if let typical = stuck.typicalSeconds { fields.append(("Usually", AlertContext.duration(typical))) }
        }
        if let incident = alert.incident, context.templateType != "test" {
            let label = switch incident.kind {
            case .overdue: "Overdue since"
            case .stuck: "Stuck since"
            default: "Failing since"
            }
            fields.append((label, AlertContext.timestamp(incident.openedAt)))
        }
        self.fields = fields
        error = context.errorMessage ?? context.incidentError
        others = context.group.dropFirst().map { "\($0.endpoint): \($0.status), \($0.recordsFailed) failed" }
        link = context.link
        footer = "alertd · alert \(alert.id.postgresText) · attempt \(alert.attempt)"
    }

    // MARK: Discord

    /// Discord's documented limits: content 2,000 characters; an embed's title 256, description
    /// 4,096, a field's name 256 and value 1,024, at most 25 fields, its footer 2,048; 6,000 in
    /// all the embeds of a message.
    static let discordContentLimit = 2000
    static let discordTitleLimit = 256
    static let discordDescriptionLimit = 4096
    static let discordFieldNameLimit = 256
    static let discordFieldValueLimit = 1024
    static let discordFooterLimit = 2048
    static let discordEmbedTotal = 6000

    /// The embed's colour by what happened (`Tone`).
    static func discordColor(_ templateType: String) -> Int {
        switch Tone(templateType) {
        case .failure: 0xD93025
        case .warning: 0xF29900
        case .stillWrong: 0xE37400
        case .test: 0x1A73E8
        case .good: 0x1E8E3E
        }
    }

    /// The values `templates/discord.json.mustache` lays out: markdown escaped and mentions
    /// broken (no text can ping `@everyone`, `@here`, a user or a role; the message also says
    /// `allowed_mentions: {"parse": []}`), each cut to its limit with a marker, the embed within
    /// 6,000 characters in all.
    func discordValues(templateType: String) -> [String: Any] {
        let title = Self.cut(Self.discordEscaped(self.title), Self.discordTitleLimit)
        let footer = Self.cut(Self.discordEscaped(self.footer), Self.discordFooterLimit)
        // Discord refuses an empty field: an empty value (a nameless endpoint, say) shows as a dash.
        var fields: [(name: String, value: String)] = self.fields.prefix(25).map {
            (Self.cut(Self.discordEscaped($0.name), Self.discordFieldNameLimit), $0.value.isEmpty ? "—" : Self.cut(Self.discordEscaped($0.value), Self.discordFieldValueLimit))
        }
        var description = Self.discordEscaped(headline)
        if let error, !error.isEmpty {
            description += "\n```\n" + Self.cut(Self.discordMentionsBroken(error).replacingOccurrences(of: "```", with: "`\u{200B}``"), 1800) + "\n```"
        }
        if !others.isEmpty { description += "\n**Also failing:**\n" + others.map { "• " + Self.discordEscaped($0) }.joined(separator: "\n") }
        // Whatever the embed's parts leave of the 6,000 goes to the description.
        var used = title.utf16.count + footer.utf16.count + fields.reduce(0) { $0 + $1.name.utf16.count + $1.value.utf16.count }
        while used > Self.discordEmbedTotal - 200, !fields.isEmpty {
            let last = fields.removeLast()
            used -= last.name.utf16.count + last.value.utf16.count
        }
        description = Self.cut(description, min(Self.discordDescriptionLimit, Self.discordEmbedTotal - used))
        var values: [String: Any] = [
            "content": Self.cut(Self.discordEscaped(self.title), Self.discordContentLimit),
            "title": title,
            "description": description,
            "color": Self.discordColor(templateType),
            "fields": fields.enumerated().map { index, field in
                ["name": field.name, "value": field.value, "last": index == fields.count - 1] as [String: Any]
            },
            "footer": footer,
        ]
        if let link { values["link"] = link }
        return values
    }

    /// Discord's markdown escaped with backslashes (`\ * _ ~ ` | [ ]` anywhere, so no text is
    /// bold, struck, spoilered or a masked link; `> # -` at a line's start, so none is a quote, a
    /// heading or a list), and mentions broken.
    static func discordEscaped(_ text: String) -> String {
        var escaped = ""
        var lineStart = true
        for character in text {
            if "\\*_~`|[]".contains(character) || (lineStart && ">#-".contains(character)) { escaped.append("\\") }
            escaped.append(character)
            lineStart = character.isNewline || (lineStart && character == " ")
        }
        return discordMentionsBroken(escaped)
    }

    /// `@everyone`, `@here`, `<@user>`, `<@&role>` and `<#channel>` made inert: a zero-width
    /// space after each `@` and `<`.
    static func discordMentionsBroken(_ text: String) -> String {
        text.replacingOccurrences(of: "@", with: "@\u{200B}").replacingOccurrences(of: "<", with: "<\u{200B}")
    }

    // MARK: Slack

    /// Slack's documented limits (Block Kit): a header's text 150 characters, a section's text
    /// 3,000, a field's 2,000, at most 10 fields, 50 blocks (this layout has at most 7).
    static let slackHeaderLimit = 150
    static let slackTextLimit = 3000
    static let slackFieldLimit = 2000
    static let slackFieldCount = 10

    /// The values `templates/slack.json.mustache` lays out: mrkdwn escaped (`&`, `<`, `>`, so no
    /// text becomes a link, a mention or a channel), each cut to its limit with a marker.
    var slackValues: [String: Any] {
        let fields = self.fields.prefix(Self.slackFieldCount).enumerated().map { index, field in
            ["text": Self.cut("*\(field.name)*\n\(Self.slackEscaped(field.value))", Self.slackFieldLimit), "last": index == min(self.fields.count, Self.slackFieldCount) - 1] as [String: Any]
        }
        var values: [String: Any] = [
            "text": Self.cut(Self.slackEscaped(title), Self.slackTextLimit),
            "header": Self.cut(title, Self.slackHeaderLimit),
            "headline": Self.cut(Self.slackEscaped(headline), Self.slackTextLimit),
            "fields": fields,
            "has_fields": !fields.isEmpty,
            "footer": Self.cut(Self.slackEscaped(footer), Self.slackTextLimit),
        ]
        if let error, !error.isEmpty {
            // In a code block, whose fence a tenant's text must not close.
            let fenced = Self.slackEscaped(error).replacingOccurrences(of: "```", with: "`\u{200B}``")
            values["error"] = "```" + Self.cut(fenced, Self.slackTextLimit - 6) + "```"
        }
        if !others.isEmpty {
            values["others"] = Self.cut("*Also failing:*\n" + others.map { "• " + Self.slackEscaped($0) }.joined(separator: "\n"), Self.slackTextLimit)
        }
        if let link { values["link"] = link }
        return values
    }

    /// Slack's escaping for message text: `&`, `<` and `>` only.
    static func slackEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    // MARK: Microsoft Teams

    /// A Teams message is at most 28 KB (the Adaptive Card and its envelope); `AlertTemplates`
    /// renders again with smaller parts (`scale`) while it is longer.
    static let teamsMessageBytes = 28_000

    /// The card's title colour (an Adaptive Card `color`) by what happened (`Tone`).
    static func teamsColor(_ templateType: String) -> String {
        switch Tone(templateType) {
        case .failure: "Attention"
        case .warning, .stillWrong: "Warning"
        case .test: "Accent"
        case .good: "Good"
        }
    }

    /// The values `templates/teams.json.mustache` lays out in an Adaptive Card: every text
    /// markdown-escaped (Adaptive Cards read `**`, `_`, `[..](..)` and lists), the long ones cut
    /// to `scale` of their usual limits with a marker.
    func teamsValues(templateType: String, scale: Double = 1) -> [String: Any] {
        cardValues(color: Self.teamsColor(templateType), title: Self.teamsEscaped, text: Self.teamsEscaped, scale: scale) {
            "**Also failing:**\n\n" + $0.map { "- " + Self.teamsEscaped($0) }.joined(separator: "\n")
        }
    }

    /// The values of a card (Teams, Google Chat): the title, the colour, the sentence, the facts
    /// as `fields` (each `name`, `value`, `last`), the error, the other endpoints (`others`
    /// lays them out), the link and the footer; each text made safe by `text` (the title by
    /// `title`), the long ones cut to `scale` of their usual limits with a marker.
    private func cardValues(color: String, title: (String) -> String, text: (String) -> String, scale: Double, others layOut: ([String]) -> String) -> [String: Any] {
        func limit(_ base: Int) -> Int { max(40, Int(Double(base) * scale)) }
        let fields = self.fields.enumerated().map { index, field -> [String: Any] in
            [
                "name": Self.cut(text(field.name), 100), "value": field.value.isEmpty ? "—" : Self.cut(text(field.value), limit(1000)),
                "last": index == self.fields.count - 1,
            ]
        }
        var values: [String: Any] = [
            "title": Self.cut(title(self.title), 250),
            "color": color,
            "headline": Self.cut(text(headline), limit(1000)),
            "fields": fields,
            "has_fields": !fields.isEmpty,
            "footer": Self.cut(text(footer), 500),
        ]
        if let error, !error.isEmpty { values["error"] = Self.cut(text(error), limit(8000)) }
        if !others.isEmpty { values["others"] = Self.cut(layOut(others), limit(4000)) }
        if let link { values["link"] = link }
        return values
    }

    /// Adaptive Cards' markdown escaped with backslashes (CommonMark's rule): `\ * _ ~ ` [ ]`
    /// anywhere (so no text is bold, italic, code or a link), and what would start a list, a
    /// quote or a heading at a line's start.
    static func teamsEscaped(_ text: String) -> String {
        var escaped = ""
        var lineStart = true
        for character in text {
            if "\\*_~`[]".contains(character) || (lineStart && "->#+".contains(character)) { escaped.append("\\") }
            escaped.append(character)
            lineStart = character.isNewline || (lineStart && character == " ")
        }
        // "1. " starts a numbered list: the dot after a line's leading digits is escaped.
        return escaped.replacingOccurrences(of: #"(?m)^(\s*[0-9]+)\."#, with: #"$1\\."#, options: .regularExpression)
    }

    // MARK: Google Chat

    /// Google Chat's documented limit: a message, text and cards, at most 32,000 bytes.
    static let googleChatMessageBytes = 32_000

    /// The colour of the sentence that says what happened (`Tone`).
    static func googleChatColor(_ templateType: String) -> String {
        switch Tone(templateType) {
        case .failure: "#d93025"
        case .warning, .stillWrong: "#e37400"
        case .test: "#1a73e8"
        case .good: "#1e8e3e"
        }
    }

    /// The values `templates/google_chat.json.mustache` lays out in a card: the card's texts
    /// HTML-escaped (Google Chat reads a few HTML tags in them), line breaks as `<br>`, the long
    /// ones cut to `scale` of their usual limits with a marker; the header's title is plain text.
    /// The message has no `text` (which would repeat the card above it, and reads `<users/all>`
    /// as a mention): the card's header is what a notification shows.
    func googleChatValues(templateType: String, scale: Double = 1) -> [String: Any] {
        cardValues(color: Self.googleChatColor(templateType), title: { $0 }, text: Self.googleChatHTML, scale: scale) {
            $0.map { "• " + Self.googleChatHTML($0) }.joined(separator: "<br>")
        }
    }

    /// Text for a Google Chat card: `&`, `<`, `>` as entities, line breaks as `<br>`.
    static func googleChatHTML(_ text: String) -> String {
        slackEscaped(text).replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "<br>")
    }

    /// `text` cut to `limit` characters (UTF-16 code units, as the services count them), the
    /// last of them a marker that says it was cut; never inside a character, nor inside an
    /// escape such as `&amp;` or a `<br>`.
    static func cut(_ text: String, _ limit: Int) -> String {
        guard text.utf16.count > limit else { return text }
        let marker = " …[cut]"
        var kept = ""
        var used = 0
        for character in text {
            let size = character.utf16.count
            if used + size > limit - marker.utf16.count { break }
            kept.append(character)
            used += size
        }
        if let amp = kept.lastIndex(of: "&"), !kept[amp...].contains(";") { kept = String(kept[..<amp]) }
        if let open = kept.lastIndex(of: "<"), "<br>".hasPrefix(kept[open...]) {
            kept = String(kept[..<open])
        }
        return kept + marker
    }
}
