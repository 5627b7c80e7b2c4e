import AlertdPostgres
import Foundation
import Logging

/// The webhook formats integrations name (`configuration_metadata -> 'alertd' ->>
/// 'webhook_format'`), read through `alertd_integration_settings()` at the dispatcher's first
/// claim and every `refreshInterval` after: a change reaches alertd within that time.
final class WebhookFormats: @unchecked Sendable {
    // Invariant: read and written with `lock` held.
    private let lock = NSLock()
    private var formats: [UUID: WebhookFormat] = [:]
    private var readAt: ContinuousClock.Instant?
    /// The unknown names already logged, by integration: each is logged once, not at every read.
    private var unknownLogged: [UUID: String] = [:]
    private let logger: Logger

    static let refreshInterval: Duration = .seconds(30)

    init(logger: Logger) {
        self.logger = logger
    }

    /// Reads the formats again if they are older than `refreshInterval`. A schema without
    /// `alertd_integration_settings()` (before 20251129) names none. A read that fails keeps the
    /// formats read before, says so, and is tried again after the interval: it never holds up a
    /// claim.
    func refresh(_ connection: PostgresConnection, now: ContinuousClock.Instant = .now) async {
        guard lock.withLock({ readAt.map { now - $0 >= Self.refreshInterval } ?? true }) else { return }
        var read: [UUID: WebhookFormat] = [:]
        do {
            let rows = try await connection.query(
                "SELECT integration_config_id, settings ->> 'webhook_format' AS format FROM alertd_integration_settings() WHERE settings ? 'webhook_format'"
            )
            for row in rows {
                let name: String? = try row.decode("format")
                let integration: UUID = try row.decode("integration_config_id")
                if let format = WebhookFormat.named(name) {
                    read[integration] = format
                } else if lock.withLock({ unknownLogged.updateValue(name ?? "", forKey: integration) != (name ?? "") }) {
                    logger.warning("an integration names a webhook format alertd does not know; its URL decides", metadata: [
                        "integration": "\(integration)", "webhook_format": "\(name ?? "")",
                        "known": "\(WebhookFormat.allCases.map(\.rawValue).joined(separator: ", "))",
                    ])
                }
            }
        } catch let error as PostgresError where error.sqlState == "42883" {
            // undefined_function: the schema is older than 20251129; no integration names one.
        } catch {
            logger.warning("could not read the integrations' webhook formats; keeping those read before", metadata: ["error": "\(error)"])
            lock.withLock { readAt = now }
            return
        }
        lock.withLock {
            formats = read
            readAt = now
        }
    }

    /// `alerts` with the formats their integrations name.
    func apply(_ alerts: [ClaimedAlert]) -> [ClaimedAlert] {
        let formats = lock.withLock { self.formats }
        guard !formats.isEmpty else { return alerts }
        return alerts.map { alert in
            var alert = alert
            if let id = alert.integration?.id { alert.webhookFormat = formats[id] }
            return alert
        }
    }
}
