import AlertdPostgres
import Foundation

/// The stock `webhook.json` template, written straight to bytes.
///
/// When the templates folder holds the webhook.json alertd ships, unedited, alertd writes the body
/// here instead of through Mustache: the same bytes (a test compares the two over every shape of
/// alert), without looking each name up in a dictionary of `Any` at run time, and without parsing
/// the result back to check it is JSON. That was about a third of alertd's CPU per webhook. An
/// edited webhook.json renders through Mustache as before.
enum StockWebhookBody {
    /// The text of templates/webhook.json.mustache as alertd ships it.
    static let template = #"""
        {{% CONTENT_TYPE: JSON}}
        {
          "type": "{{alert.event}}",
          "timestamp": "{{generated_at}}",
          "data": {
            "alert": {{#alert}}{"id": "{{id}}", "type": "{{type}}", "attempt": {{attempt}}, "test": {{is_test}}}{{/alert}},
            "integration": {{#integration}}{"id": "{{id}}", "name": "{{name}}", "type": "{{type}}", "environment": "{{environment}}", "tenant_id": "{{tenant_id}}"}{{/integration}}{{^integration}}null{{/integration}},
            "sync": {{#sync}}{
              "id": "{{id}}",
              "endpoint": "{{endpoint}}",
              "status": "{{status}}",
              "started_at": "{{started_at}}",
              "completed_at": {{#completed_at}}"{{.}}"{{/completed_at}}{{^completed_at}}null{{/completed_at}},
              "duration_seconds": {{#has_duration}}{{duration_seconds}}{{/has_duration}}{{^has_duration}}null{{/has_duration}},
              "records": {"synced": {{records_synced}}, "failed": {{records_failed}}, "skipped": {{records_skipped}}},
              "error_message": {{#error_message}}"{{.}}"{{/error_message}}{{^error_message}}null{{/error_message}},
              "error_truncated": {{error_truncated}},
              "triggered_by": "{{triggered_by}}",
              "retry": {{#retry}}{"number": {{number}}, "max": {{max}}, "next_at": "{{next_at}}"}{{/retry}}{{^retry}}null{{/retry}}
            }{{/sync}}{{^sync}}null{{/sync}},
            "incident": {{#incident}}{"id": "{{id}}", "kind": "{{kind}}", "opened_at": "{{opened_at}}", "resolved_at": {{#resolved_at}}"{{.}}"{{/resolved_at}}{{^resolved_at}}null{{/resolved_at}}, "failing_seconds": {{failing_seconds}}, "failed_runs": {{#has_failed_runs}}{{failed_runs}}{{/has_failed_runs}}{{^has_failed_runs}}null{{/has_failed_runs}}, "recent_runs": [{{#runs}}"{{id}}"{{^last}}, {{/last}}{{/runs}}], "last_error": {{#last_error}}"{{.}}"{{/last_error}}{{^last_error}}null{{/last_error}}}{{/incident}}{{^incident}}null{{/incident}},
            "overdue": {{#overdue}}{"endpoint": "{{endpoint}}", "frequency": "{{frequency}}", "expected_at": {{#expected_at}}"{{.}}"{{/expected_at}}{{^expected_at}}null{{/expected_at}}, "grace_seconds": {{grace_seconds}}}{{/overdue}}{{^overdue}}null{{/overdue}},
            "stuck": {{#stuck}}{"running_seconds": {{running_seconds}}, "stuck_after_seconds": {{after_seconds}}, "typical_seconds": {{#has_typical}}{{typical_seconds}}{{/has_typical}}{{^has_typical}}null{{/has_typical}}}{{/stuck}}{{^stuck}}null{{/stuck}},
            "held": {{#held}}{"count": {{count}}, "limit": {{limit}}, "channel": "{{channel}}", "window_start": "{{window_start}}", "window_end": "{{window_end}}"}{{/held}}{{^held}}null{{/held}},
            "group": {{#group}}[{{#alerts}}{"alert_id": "{{alert_id}}", "sync_id": "{{sync_id}}", "endpoint": "{{endpoint}}", "status": "{{status}}", "started_at": "{{started_at}}", "records": {"synced": {{records_synced}}, "failed": {{records_failed}}}, "error_message": {{#error_message}}"{{.}}"{{/error_message}}{{^error_message}}null{{/error_message}}, "link": {{#has_link}}"{{link}}"{{/has_link}}{{^has_link}}null{{/has_link}}}{{^last}}, {{/last}}{{/alerts}}]{{/group}}{{^group}}null{{/group}},
            "link": {{#link}}"{{.}}"{{/link}}{{^link}}null{{/link}}
          }
        }

        """#

    /// The body the stock template renders for `context`.
    static func render(_ context: AlertContext) -> Data {
        let alert = context.alert
        var out = JSONWriter()
        out.raw("{\n  \"type\": \"")
        out.escaped(alert.eventType)
        out.raw("\",\n  \"timestamp\": \"")
        out.escaped(context.generatedAt)
        out.raw("\",\n  \"data\": {\n    \"alert\": {\"id\": \"")
        out.escaped(alert.id.postgresText)
        out.raw("\", \"type\": \"")
        out.escaped(alert.templateType)
        out.raw("\", \"attempt\": ")
        out.number(alert.attempt)
        out.raw(", \"test\": ")
        out.raw(alert.origin == .test ? "true" : "false")
        out.raw("},\n    \"integration\": ")
        if let integration = alert.integration {
            out.raw("{\"id\": \"")
            out.escaped(integration.id.postgresText)
            out.raw("\", \"name\": \"")
            out.escaped(integration.name ?? integration.type)
            out.raw("\", \"type\": \"")
            out.escaped(integration.type)
            out.raw("\", \"environment\": \"")
            out.escaped(integration.environment)
            out.raw("\", \"tenant_id\": \"")
            out.escaped(integration.tenantID.postgresText)
            out.raw("\"}")
        } else {
            out.raw("null")
        }
        out.raw(",\n    \"sync\": ")
        if let sync = alert.sync {
            out.raw("{\n      \"id\": \"")
            out.escaped(sync.id.postgresText)
            out.raw("\",\n      \"endpoint\": \"")
            out.escaped(sync.endpoint)
            out.raw("\",\n      \"status\": \"")
            out.escaped(sync.status)
            out.raw("\",\n      \"started_at\": \"")
            out.escaped(AlertContext.timestamp(sync.startedAt))
            out.raw("\",\n      \"completed_at\": ")
            out.quotedOrNull(sync.completedAt.map(AlertContext.timestamp))
            out.raw(",\n      \"duration_seconds\": ")
            if let seconds = sync.durationSeconds { out.number(seconds) } else { out.raw("null") }
            out.raw(",\n      \"records\": {\"synced\": ")
            out.number(sync.recordsSynced)
            out.raw(", \"failed\": ")
            out.number(sync.recordsFailed)
            out.raw(", \"skipped\": ")
            out.number(sync.recordsSkipped)
            out.raw("},\n      \"error_message\": ")
            out.quotedOrNull(context.errorMessage)
            out.raw(",\n      \"error_truncated\": ")
            out.raw(context.errorTruncated ? "true" : "false")
            out.raw(",\n      \"triggered_by\": \"")
            out.escaped(sync.triggeredBy)
            out.raw("\",\n      \"retry\": ")
            if let retry = context.retry {
                out.raw("{\"number\": ")
                out.number(retry.number)
                out.raw(", \"max\": ")
                out.number(retry.max)
                out.raw(", \"next_at\": \"")
                out.escaped(retry.nextAt)
                out.raw("\"}")
            } else {
                out.raw("null")
            }
            out.raw("\n    }")
        } else {
            out.raw("null")
        }
        out.raw(",\n    \"incident\": ")
        if let incident = alert.incident {
            out.raw("{\"id\": \"")
            out.escaped(incident.id.postgresText)
            out.raw("\", \"kind\": \"")
            out.escaped(incident.kind.rawValue)
            out.raw("\", \"opened_at\": \"")
            out.escaped(AlertContext.timestamp(incident.openedAt))
            out.raw("\", \"resolved_at\": ")
            out.quotedOrNull(incident.resolvedAt.map(AlertContext.timestamp))
            out.raw(", \"failing_seconds\": ")
            out.number(context.failingSeconds ?? 0)
            out.raw(", \"failed_runs\": ")
            if let failedRuns = incident.failedRuns { out.number(failedRuns) } else { out.raw("null") }
            out.raw(", \"recent_runs\": [")
            for (index, run) in incident.recentRuns.enumerated() {
                if index > 0 { out.raw(", ") }
                out.raw("\"")
                out.escaped(run.postgresText)
                out.raw("\"")
            }
            out.raw("], \"last_error\": ")
            out.quotedOrNull(context.incidentError)
            out.raw("}")
        } else {
            out.raw("null")
        }
        out.raw(",\n    \"overdue\": ")
        if let overdue = context.overdue {
            out.raw("{\"endpoint\": \"")
            out.escaped(alert.endpoint ?? "")
            out.raw("\", \"frequency\": \"")
            out.escaped(overdue.frequency)
            out.raw("\", \"expected_at\": ")
            out.quotedOrNull(overdue.expectedAt)
            out.raw(", \"grace_seconds\": ")
            out.number(overdue.graceSeconds)
            out.raw("}")
        } else {
            out.raw("null")
        }
        out.raw(",\n    \"stuck\": ")
        if let stuck = context.stuck {
            out.raw("{\"running_seconds\": ")
            out.number(stuck.runningSeconds)
            out.raw(", \"stuck_after_seconds\": ")
            out.number(stuck.afterSeconds)
            out.raw(", \"typical_seconds\": ")
            if let typical = stuck.typicalSeconds { out.number(typical) } else { out.raw("null") }
            out.raw("}")
        } else {
            out.raw("null")
        }
        out.raw(",\n    \"held\": ")
        if let held = alert.heldNotice {
            out.raw("{\"count\": ")
            out.number(held.count)
            out.raw(", \"limit\": ")
            out.number(held.limit)
            out.raw(", \"channel\": \"")
            out.escaped(alert.channel.rawValue)
            out.raw("\", \"window_start\": \"")
            out.escaped(AlertContext.timestamp(held.windowStart))
            out.raw("\", \"window_end\": \"")
            out.escaped(AlertContext.timestamp(held.windowEnd))
            out.raw("\"}")
        } else {
            out.raw("null")
        }
        out.raw(",\n    \"group\": ")
        if context.group.isEmpty {
            out.raw("null")
        } else {
            out.raw("[")
            for (index, entry) in context.group.enumerated() {
                if index > 0 { out.raw(", ") }
                out.raw("{\"alert_id\": \"")
                out.escaped(entry.alertID)
                out.raw("\", \"sync_id\": \"")
                out.escaped(entry.syncID)
                out.raw("\", \"endpoint\": \"")
                out.escaped(entry.endpoint)
                out.raw("\", \"status\": \"")
                out.escaped(entry.status)
                out.raw("\", \"started_at\": \"")
                out.escaped(entry.startedAt)
                out.raw("\", \"records\": {\"synced\": ")
                out.number(entry.recordsSynced)
                out.raw(", \"failed\": ")
                out.number(entry.recordsFailed)
                out.raw("}, \"error_message\": ")
                out.quotedOrNull(entry.errorMessage)
                out.raw(", \"link\": ")
                out.quotedOrNull(entry.link)
                out.raw("}")
            }
            out.raw("]")
        }
        out.raw(",\n    \"link\": ")
        out.quotedOrNull(context.link)
        out.raw("\n  }\n}\n")
        return Data(out.bytes)
    }
}

/// Bytes of JSON text, escaped as `JSONContentType` escapes a value.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    init() {
        bytes.reserveCapacity(1024)
    }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func number(_ value: Int) {
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func quotedOrNull(_ text: String?) {
        guard let text else { return raw("null") }
        bytes.append(UInt8(ascii: "\""))
        escaped(text)
        bytes.append(UInt8(ascii: "\""))
    }

    /// Quotes, backslashes, every control character, U+2028 and U+2029 escaped; the rest as is.
    mutating func escaped(_ text: String) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            switch byte {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case UInt8(ascii: "\n"): raw("\\n")
            case UInt8(ascii: "\r"): raw("\\r")
            case UInt8(ascii: "\t"): raw("\\t")
            case 0..<0x20, 0x7F:
                raw("\\u00")
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            case 0xE2 where utf8.count >= 2 && utf8[utf8.startIndex] == 0x80 && (utf8[utf8.startIndex + 1] == 0xA8 || utf8[utf8.startIndex + 1] == 0xA9):
                raw(utf8[utf8.startIndex + 1] == 0xA8 ? "\\u2028" : "\\u2029")
                utf8.removeFirst(2)
            default:
                bytes.append(byte)
            }
        }
    }
}
