import Foundation
import Mustache

/// The Mustache templates alerts are written with, loaded and checked once at start-up.
///
/// For each alert type (failure, warning, success, recovery, reminder, overdue, resumed, stuck,
/// stuck_ended, webhook_disabled, held, test) there is a subject, a plain-text and an HTML body; `webhook.json` is the webhook body. All render one context, described in
/// docs/templates.md.
public struct AlertTemplates: Sendable {
    public static let variable = "ALERTD_TEMPLATES_DIR"
    public static let types = ["failure", "warning", "success", "recovery", "reminder", "overdue", "resumed", "stuck", "stuck_ended", "webhook_disabled", "held", "test"]
    public static let required = types.flatMap { ["\($0).subject", "\($0).text", "\($0).html"] } + ["webhook.json"]
        + WebhookFormat.allCases.filter { $0 != .standard }.map { "\($0.rawValue).json" }

    let library: MustacheLibrary
    public let directory: URL
    /// Whether webhook.json is the stock template, written by `StockWebhookBody` without Mustache.
    let stockWebhook: Bool
    /// The alert types whose subject template is the stock one, written by `StockSubjects`.
    let stockSubjects: Set<String>

    /// Loads every `*.mustache` file of `directory`; a template that does not parse, or one that
    /// is missing, is an error naming the file.
    public static func load(from directory: URL) async throws -> AlertTemplates {
        JSONContentType.register
        let library: MustacheLibrary
        do {
            library = try await MustacheLibrary(directory: directory.path)
        } catch let error as MustacheLibrary.ParserError {
            throw AlertdError(
                .configuration,
                "The template \(error.filename) does not parse at line \(error.context.lineNumber), column \(error.context.columnNumber): \(error.error).",
                hint: "Fix the template, or point \(variable) at a folder of working templates."
            )
        } catch {
            throw AlertdError(.configuration, "Cannot read the templates in \(directory.path): \(error)")
        }
        let missing = required.filter { library.getTemplate(named: $0) == nil }
        guard missing.isEmpty else {
            throw AlertdError(
                .configuration,
                "The templates folder \(directory.path) lacks \(missing.map { "\($0).mustache" }.joined(separator: ", ")).",
                hint: "Copy the missing files from alertd's templates/ folder."
            )
        }
        let stockWebhook = library.getTemplate(named: "webhook.json")?.description == StockWebhookBody.template
        let stockSubjects = Set(types.filter { library.getTemplate(named: "\($0).subject")?.description == StockSubjects.templates[$0] })
        return AlertTemplates(library: library, directory: directory, stockWebhook: stockWebhook, stockSubjects: stockSubjects)
    }

    /// The templates folder named by `flag` or `ALERTD_TEMPLATES_DIR`, else `templates/` next to
    /// the SQL folder alertd found (`share/alertd/templates` when installed).
    public static func locate(flag: String?, environment: [String: String], sqlDirectory: SQLDirectory?) -> URL {
        if let explicit = flag ?? environment[variable] { return URL(filePath: explicit, directoryHint: .isDirectory) }
        if let sqlDirectory { return sqlDirectory.url.deletingLastPathComponent().appending(path: "templates") }
        return URL(filePath: FileManager.default.currentDirectoryPath).appending(path: "templates")
    }

    /// What one alert says, in each form.
    public struct Rendered: Sendable, Equatable {
        public let subject: String
        public let text: String
        public let html: String
    }

    /// Renders the subject and both bodies of `alert`.
    public func renderMessage(_ context: AlertContext) -> Rendered {
        let type = context.templateType
        let values = context.values
        return Rendered(
            subject: subject(context, values: values),
            text: render("\(type).text", values),
            html: render("\(type).html", values)
        )
    }

    /// Renders the subject alone: what a webhook's audit keeps of the message.
    public func renderSubject(_ context: AlertContext) -> String {
        subject(context, values: context.values)
    }

    /// The subject, one line; `values` (the Mustache context) is built only for an edited subject.
    private func subject(_ context: AlertContext, values: @autoclosure () -> [String: Any]) -> String {
        let text = stockSubjects.contains(context.templateType) ? StockSubjects.render(context) : render("\(context.templateType).subject", values())
        return Self.singleLine(text, limit: 250)
    }

    /// Renders the subject template through Mustache, stock or not: what `StockSubjects` must equal.
    func renderSubjectThroughMustache(_ context: AlertContext) -> String {
        render("\(context.templateType).subject", context.values)
    }

    /// Renders the webhook body. An edited webhook.json's output is checked to be JSON, so a
    /// broken override fails clearly.
    public func renderWebhookBody(_ context: AlertContext) throws -> Data {
        if stockWebhook { return StockWebhookBody.render(context) }
        let body = Data(render("webhook.json", context.values).utf8)
        do {
            _ = try JSONSerialization.jsonObject(with: body)
        } catch {
            throw AlertdError(.configuration, "The webhook.json template produced text that is not JSON.")
        }
        return body
    }

    /// Renders a chat service's message (`<format>.json`, through Mustache, with the values of
    /// `ChatMessage`), checked to be JSON. A service that limits a message's bytes (Teams, Google
    /// Chat) gets it rendered again with its long parts shorter until it fits.
    public func renderChat(_ format: WebhookFormat, _ context: AlertContext) throws -> Data {
        let message = ChatMessage(context, subject: renderSubject(context))
        let type = context.templateType
        let base = context.values
        var body = Data()
        for scale in [1, 0.5, 0.25, 0.1, 0] {
            var values = base
            let limit: Int
            switch format {
            case .standard: return try renderWebhookBody(context)
            case .slack: values["slack"] = message.slackValues; limit = .max
            case .discord: values["discord"] = message.discordValues(templateType: type); limit = .max
            case .teams: values["teams"] = message.teamsValues(templateType: type, scale: scale); limit = ChatMessage.teamsMessageBytes
            case .googleChat: values["google_chat"] = message.googleChatValues(templateType: type, scale: scale); limit = ChatMessage.googleChatMessageBytes
            }
            body = Data(render("\(format.rawValue).json", values).utf8)
            if body.count <= limit { break }
        }
        do {
            _ = try JSONSerialization.jsonObject(with: body)
        } catch {
            throw AlertdError(.configuration, "The \(format.rawValue).json template produced text that is not JSON.")
        }
        return body
    }

    /// Renders webhook.json through Mustache, stock or not: what `StockWebhookBody` must equal.
    func renderWebhookBodyThroughMustache(_ context: AlertContext) -> String {
        render("webhook.json", context.values)
    }

    private func render(_ name: String, _ values: [String: Any]) -> String {
        library.render(values, withTemplate: name) ?? ""
    }

    /// Folds line breaks and other control characters to spaces (a subject is one header line),
    /// squeezes runs of spaces, and cuts at `limit` characters.
    static func singleLine(_ text: String, limit: Int) -> String {
        // Most subjects are one line already: printable ASCII, single spaces between words.
        if isSingleLineASCII(text, limit: limit) { return text }
        var result = ""
        var lastWasSpace = false
        for character in text {
            let isSpace = character.isWhitespace || character.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
            if isSpace {
                if !lastWasSpace && !result.isEmpty { result.append(" ") }
                lastWasSpace = true
            } else {
                result.append(character)
                lastWasSpace = false
            }
        }
        // Every whitespace character was folded into a space that only follows text, so at most
        // one space is left at the end (Foundation's trimming bridged to NSString for this, and
        // cost a third as much as rendering the subject).
        if result.last == " " { result.removeLast() }
        return result.count > limit ? String(result.prefix(limit - 1)) + "…" : result
    }

    /// Whether `text` is what `singleLine` would make of it anyway: printable ASCII (one byte a
    /// character), no space at either end or next to another, at most `limit` long. Checked on
    /// the bytes, which costs a tenth of reading each character's Unicode properties.
    static func isSingleLineASCII(_ text: String, limit: Int) -> Bool {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.count <= limit else { return false }
        var previous = UInt8(ascii: " ")
        for byte in bytes {
            guard byte >= 0x20 && byte < 0x7F, byte != UInt8(ascii: " ") || previous != UInt8(ascii: " ") else { return false }
            previous = byte
        }
        return previous != UInt8(ascii: " ")
    }
}
