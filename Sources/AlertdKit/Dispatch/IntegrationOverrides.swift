import AlertdPostgres
import Foundation
import Logging

/// What integrations set for their own alerts under `configuration_metadata -> 'alertd'` and the
/// dispatcher applies to each claimed alert: the webhook format (`webhook_format`) and the
/// message limit (`message_limit`: a number, or `off`). Read through
/// `alertd_integration_settings()` at the dispatcher's first claim and every `refreshInterval`
/// after: a change reaches alertd within that time.
final class IntegrationOverrides: @unchecked Sendable {
    // Invariant: read and written with `lock` held.
    private let lock = NSLock()
    private var formats: [UUID: WebhookFormat] = [:]
    private var limits: [UUID: Int] = [:]
    private var readAt: ContinuousClock.Instant?
    /// The values already logged as unknown, by integration and key: each is logged once, not at
    /// every read.
    private var unknownLogged: [String: String] = [:]
    private let logger: Logger

    static let refreshInterval: Duration = .seconds(30)

    init(logger: Logger) {
        self.logger = logger
    }

    /// Reads the settings again if they are older than `refreshInterval`. A schema without
    /// `alertd_integration_settings()` (before 20251129) names none. A read that fails keeps the
    /// settings read before, says so, and is tried again after the interval: it never holds up a
    /// claim.
    func refresh(_ connection: PostgresConnection, now: ContinuousClock.Instant = .now) async {
        guard lock.withLock({ readAt.map { now - $0 >= Self.refreshInterval } ?? true }) else { return }
        var readFormats: [UUID: WebhookFormat] = [:]
        var readLimits: [UUID: Int] = [:]
        do {
            let rows = try await connection.query(
                """
                SELECT integration_config_id, settings ->> 'webhook_format' AS format, settings ->> 'message_limit' AS message_limit
                  FROM alertd_integration_settings()
                 WHERE settings ? 'webhook_format' OR settings ? 'message_limit'
                """
            )
            for row in rows {
                let integration: UUID = try row.decode("integration_config_id")
                if let name: String = try row.decode("format") {
                    if let format = WebhookFormat.named(name) {
                        readFormats[integration] = format
                    } else {
                        unknown(integration, "webhook_format", name, "an integration names a webhook format alertd does not know; its URL decides", [
                            "known": "\(WebhookFormat.allCases.map(\.rawValue).joined(separator: ", "))",
                        ])
                    }
                }
                if let text: String = try row.decode("message_limit") {
                    if let limit = Self.limit(text) {
                        readLimits[integration] = limit
                    } else {
                        unknown(integration, "message_limit", text, "an integration's message_limit is neither a whole number from 1 nor off; ALERTD_MESSAGE_LIMIT applies to it", [:])
                    }
                }
            }
        } catch let error as PostgresError where error.sqlState == "42883" {
            // undefined_function: the schema is older than 20251129; no integration names one.
        } catch {
            logger.warning("could not read the integrations' own settings; keeping those read before", metadata: ["error": "\(error)"])
            lock.withLock { readAt = now }
            return
        }
        lock.withLock {
            formats = readFormats
            limits = readLimits
            readAt = now
        }
    }

    /// `message_limit` as an integration writes it: a whole number from 1, or `off`
    /// (`Int.max`).
    static func limit(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if trimmed == "off" { return Int.max }
        guard let limit = Int(trimmed), limit >= 1 else { return nil }
        return limit
    }

    private func unknown(_ integration: UUID, _ key: String, _ value: String, _ message: Logger.Message, _ extra: Logger.Metadata) {
        guard lock.withLock({ unknownLogged.updateValue(value, forKey: "\(integration) \(key)") != value }) else { return }
        logger.warning(message, metadata: ["integration": "\(integration)", "\(key)": "\(value)"].merging(extra) { $1 })
    }

    /// `alerts` with the formats and limits their integrations name.
    func apply(_ alerts: [ClaimedAlert]) -> [ClaimedAlert] {
        let (formats, limits) = lock.withLock { (self.formats, self.limits) }
        guard !formats.isEmpty || !limits.isEmpty else { return alerts }
        return alerts.map { alert in
            guard let id = alert.integration?.id else { return alert }
            var alert = alert
            alert.webhookFormat = formats[id]
            alert.messageLimit = limits[id]
            return alert
        }
    }
}
