import AlertdPostgres
import Foundation

/// Rows of the platform's tables, written as the database's owner, for tests.
public struct PlatformRows: Sendable {
    public let connection: PostgresConnection

    public init(_ connection: PostgresConnection) {
        self.connection = connection
    }

    @discardableResult
    public func tenant(_ name: String = "Tenant") async throws -> UUID {
        try await connection.query("INSERT INTO tenants (name) VALUES ($1) RETURNING id", [name])[0].decode("id")
    }

    public func member(_ user: UUID, of tenant: UUID, role: String = "member") async throws {
        try await connection.query("INSERT INTO tenant_users (tenant_id, user_id, role) VALUES ($1, $2, $3)", [tenant, user, role])
    }

    /// An integration; the alert columns are set only when given, so defaults apply otherwise.
    @discardableResult
    public func integration(
        tenant: UUID,
        type: String = "paycom",
        name: String = "Paycom",
        alertOnFailure: Bool? = nil,
        alertOnSuccess: Bool? = nil,
        emails: [String]? = nil,
        webhook: String? = nil
    ) async throws -> UUID {
        let id: UUID = try await connection.query(
            "INSERT INTO integration_configs (tenant_id, integration_type, integration_name) VALUES ($1, $2, $3) RETURNING id",
            [tenant, type, name]
        )[0].decode("id")
        if let alertOnFailure { try await connection.query("UPDATE integration_configs SET alert_on_failure = $2 WHERE id = $1", [id, alertOnFailure]) }
        if let alertOnSuccess { try await connection.query("UPDATE integration_configs SET alert_on_success = $2 WHERE id = $1", [id, alertOnSuccess]) }
        if let emails { try await connection.query("UPDATE integration_configs SET alert_emails = $2 WHERE id = $1", [id, emails]) }
        if let webhook { try await connection.query("UPDATE integration_configs SET alert_webhook_url = $2 WHERE id = $1", [id, webhook]) }
        return id
    }

    @discardableResult
    public func syncRun(integration: UUID, status: String = "running", endpoint: String = "employees") async throws -> UUID {
        try await connection.query(
            "INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status) VALUES ($1, $2, now(), $3) RETURNING id",
            [integration, endpoint, status]
        )[0].decode("id")
    }

    public func setStatus(of run: UUID, to status: String) async throws {
        try await connection.query("UPDATE integration_sync_history SET status = $2 WHERE id = $1", [run, status])
    }

    /// An alert row as an admin tool would write it.
    @discardableResult
    public func alert(integration: UUID, type: String = "failure", channel: String = "email") async throws -> UUID {
        try await connection.query(
            "INSERT INTO integration_alert_history (integration_config_id, alert_type, alert_channel, recipients) VALUES ($1, $2, $3, '{ops@example.com}') RETURNING id",
            [integration, type, channel]
        )[0].decode("id")
    }
}

extension PostgresConnection {
    /// Makes this connection act as a Supabase API user: role `authenticated`, with `user` as the
    /// JWT's `sub` claim (no claim at all when nil). Row-level security applies from then on.
    public func actAsAuthenticatedUser(_ user: UUID?) async throws {
        let claims = user.map { #"{"sub":"\#($0.postgresText)","role":"authenticated"}"# } ?? "{}"
        try await query("SELECT set_config('request.jwt.claims', $1, false)", [claims])
        try await execute("SET ROLE authenticated")
    }
}
