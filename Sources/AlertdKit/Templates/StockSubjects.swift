/// The stock subject templates, written without Mustache.
///
/// A shipped subject is one line of fixed words around the integration's name and the run's
/// endpoint. When `<type>.subject.mustache` is the one alertd ships, unedited, alertd writes it
/// here: the same text (a test compares the two over every shape of alert), without looking each
/// name up in a dictionary of `Any`. After the webhook body, the subject was the largest part of
/// alertd's CPU per webhook. An edited subject renders through Mustache as before.
enum StockSubjects {
    /// The text of templates/<type>.subject.mustache as alertd ships it, by alert type.
    static let templates: [String: String] = [
        "failure": "{{% CONTENT_TYPE: TEXT}}\n[alertd] Sync failed: {{integration.name}} · {{sync.endpoint}}{{#group}} and {{others_count}} more{{/group}}\n",
        "warning": "{{% CONTENT_TYPE: TEXT}}\n[alertd] Sync partly failed: {{integration.name}} · {{sync.endpoint}}{{#group}} and {{others_count}} more{{/group}}\n",
        "success": "{{% CONTENT_TYPE: TEXT}}\n[alertd] Sync succeeded: {{integration.name}} · {{sync.endpoint}}\n",
        "recovery": "{{% CONTENT_TYPE: TEXT}}\n[alertd] Sync recovered: {{integration.name}} · {{sync.endpoint}}\n",
        "reminder": "{{% CONTENT_TYPE: TEXT}}\n[alertd] Still failing: {{integration.name}} · {{sync.endpoint}}\n",
        "overdue": "{{% CONTENT_TYPE: TEXT}}\n[alertd] Sync overdue: {{integration.name}} · {{endpoint}}\n",
        "resumed": "{{% CONTENT_TYPE: TEXT}}\n[alertd] Sync running again: {{integration.name}} · {{endpoint}}\n",
        "stuck": "{{% CONTENT_TYPE: TEXT}}\n[alertd] Sync stuck: {{integration.name}} · {{endpoint}}\n",
        "stuck_ended": "{{% CONTENT_TYPE: TEXT}}\n[alertd] Stuck sync ended: {{integration.name}} · {{endpoint}}\n",
        "webhook_disabled": "{{% CONTENT_TYPE: TEXT}}\n[alertd] Webhook disabled: {{integration.name}}\n",
        "held": "{{% CONTENT_TYPE: TEXT}}\n[alertd] Alerts held: {{integration.name}}{{#held}} · {{count}} over its limit{{/held}}\n",
        "test": "{{% CONTENT_TYPE: TEXT}}\n[Test] alertd test notification{{#integration.name}}: {{integration.name}}{{/integration.name}}\n",
    ]

    /// What the stock subject template of `context`'s type renders, before it is folded to one
    /// line.
    static func render(_ context: AlertContext) -> String {
        let alert = context.alert
        // As the context gives it to templates: a nameless integration goes by its type.
        let name = alert.integration.map { $0.name ?? $0.type } ?? ""
        let endpoint = alert.sync?.endpoint ?? ""
        // A group's message: " and 2 more" endpoints.
        let more = context.group.isEmpty ? "" : " and \(context.group.count - 1) more"
        switch context.templateType {
        // Mustache renders a section for any string, the empty one too.
        case "test": return alert.integration == nil ? "[Test] alertd test notification\n" : "[Test] alertd test notification: \(name)\n"
        case "warning": return "[alertd] Sync partly failed: \(name) · \(endpoint)\(more)\n"
        case "success": return "[alertd] Sync succeeded: \(name) · \(endpoint)\n"
        case "recovery": return "[alertd] Sync recovered: \(name) · \(endpoint)\n"
        case "reminder": return "[alertd] Still failing: \(name) · \(endpoint)\n"
        case "overdue": return "[alertd] Sync overdue: \(name) · \(alert.endpoint ?? "")\n"
        case "resumed": return "[alertd] Sync running again: \(name) · \(alert.endpoint ?? "")\n"
        case "stuck": return "[alertd] Sync stuck: \(name) · \(alert.endpoint ?? "")\n"
        case "stuck_ended": return "[alertd] Stuck sync ended: \(name) · \(alert.endpoint ?? "")\n"
        case "webhook_disabled": return "[alertd] Webhook disabled: \(name)\n"
        case "held": return "[alertd] Alerts held: \(name)\(alert.heldNotice.map { " · \($0.count) over its limit" } ?? "")\n"
        default: return "[alertd] Sync failed: \(name) · \(endpoint)\(more)\n"
        }
    }
}
