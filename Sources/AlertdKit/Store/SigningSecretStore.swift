import AlertdPostgres
import Foundation

/// Each integration's webhook signing secrets (`alertd_signing_secrets`, migration 20251203):
/// read for delivery, shown and rotated for `alertd secrets`, kept tidy by `alertd run`.
public struct SigningSecretStore: Sendable {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// One secret of an integration, as `alertd secrets` shows it.
    public struct Entry: Sendable, Equatable {
        public let secret: String
        public let createdAt: Date
        public let createdBy: String
        /// nil: the current secret; else it signs beside the current one until then.
        public let retiresAt: Date?
    }

    /// For each of `integrations` that exists, the secrets that sign its webhooks now, current
    /// first; an integration without a current secret gets one.
    public func signing(_ integrations: [UUID]) async throws -> [UUID: [String]] {
        let rows = try await connection.preparedQuery(
            "SELECT integration_config_id, secrets FROM alertd_signing_secrets($1::uuid[])", [integrations]
        )
        var secrets: [UUID: [String]] = [:]
        for row in rows {
            secrets[try row.decode("integration_config_id")] = try row.decode("secrets", as: [String]?.self) ?? []
        }
        return secrets
    }

    /// An integration's secrets that still sign, current first, creating the current one if it
    /// has none; nil if there is no such integration.
    public func show(integration: UUID) async throws -> [Entry]? {
        let secrets = try await signing([integration])
        guard secrets[integration] != nil else { return nil }
        return try await entries(integration)
    }

    /// A new current secret for `integration`; the one it replaces signs beside it for `overlap`.
    /// An overlap of zero (after a leak) deletes every older secret at once, those still retiring
    /// from an earlier rotation too. Secrets retired already are deleted. Returns the secrets
    /// that sign now, current first, or nil if there is no such integration.
    public func rotate(integration: UUID, overlap: Duration) async throws -> [Entry]? {
        let found = try await connection.withTransaction { session in
            // No row lock: alertd's role may not take one on the platform's table, and the
            // insert's foreign key holds the integration while the transaction lasts.
            let exists = try session.query("SELECT 1 FROM integration_configs WHERE id = $1", [integration])
            guard !exists.isEmpty else { return false }
            try session.query(
                """
                DELETE FROM alertd_signing_secrets
                 WHERE integration_config_id = $1 AND (retires_at <= now() OR $2::float8 = 0)
                """,
                [integration, overlap.seconds]
            )
            try session.query(
                """
                UPDATE alertd_signing_secrets SET retires_at = now() + make_interval(secs => $2)
                 WHERE integration_config_id = $1 AND retires_at IS NULL
                """,
                [integration, overlap.seconds]
            )
            try session.query("INSERT INTO alertd_signing_secrets (integration_config_id) VALUES ($1)", [integration])
            return true
        }
        return found ? try await entries(integration) : nil
    }

    /// Deletes the secrets whose overlap ended, and gives a secret to every integration that
    /// names a webhook URL and has none, so that its tenant's admins can read it before the first
    /// webhook goes. Returns how many were created and deleted.
    public func upkeep() async throws -> (created: Int, deleted: Int) {
        let deleted = try await connection.query("DELETE FROM alertd_signing_secrets WHERE retires_at <= now()").affectedRows
        let created = try await connection.query(
            """
            INSERT INTO alertd_signing_secrets (integration_config_id)
            SELECT ic.id
              FROM integration_configs ic
             WHERE nullif(btrim(ic.alert_webhook_url), '') IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM alertd_signing_secrets s
                                WHERE s.integration_config_id = ic.id AND s.retires_at IS NULL)
            ON CONFLICT (integration_config_id) WHERE retires_at IS NULL DO NOTHING
            """
        ).affectedRows
        return (created, deleted)
    }

    private func entries(_ integration: UUID) async throws -> [Entry] {
        try await connection.query(
            """
            SELECT secret, created_at, created_by, retires_at
              FROM alertd_signing_secrets
             WHERE integration_config_id = $1 AND (retires_at IS NULL OR retires_at > now())
             ORDER BY retires_at IS NOT NULL, created_at DESC
            """,
            [integration]
        ).map {
            Entry(secret: try $0.decode("secret"), createdAt: try $0.decode("created_at"), createdBy: try $0.decode("created_by"), retiresAt: try $0.decode("retires_at"))
        }
    }
}
