import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// Who may read and write alert history through the Supabase API roles.
@Suite struct RowLevelSecurityTests {
    struct World: Sendable {
        let memberOfA: UUID
        let tenantAdminOfA: UUID
        let hostAdmin: UUID
        let superAdmin: UUID
        let stranger: UUID
        let integrationA: UUID
        let integrationB: UUID
        let alertsA: [UUID]
        let alertsB: [UUID]
    }

    /// Two tenants with an integration and alerts each; the alerts of A have an attempt each.
    static func world(_ connection: PostgresConnection) async throws -> World {
        let rows = PlatformRows(connection)
        let tenantA = try await rows.tenant("A")
        let tenantB = try await rows.tenant("B")
        let hostTenant = try await rows.tenant("Host")
        let world = World(
            memberOfA: UUID(), tenantAdminOfA: UUID(), hostAdmin: UUID(), superAdmin: UUID(), stranger: UUID(),
            integrationA: try await rows.integration(tenant: tenantA),
            integrationB: try await rows.integration(tenant: tenantB),
            alertsA: [], alertsB: []
        )
        try await rows.member(world.memberOfA, of: tenantA)
        try await rows.member(world.tenantAdminOfA, of: tenantA, role: "tenant_admin")
        try await rows.member(world.hostAdmin, of: hostTenant, role: "host_admin")
        try await rows.member(world.superAdmin, of: hostTenant, role: "super_admin")
        let alertsA = [try await rows.alert(integration: world.integrationA), try await rows.alert(integration: world.integrationA, channel: "webhook")]
        let alertsB = [try await rows.alert(integration: world.integrationB)]
        for alert in alertsA + alertsB {
            try await connection.query(
                "INSERT INTO integration_alert_attempts (alert_id, attempt_number, started_at, duration_ms, outcome) VALUES ($1, 1, now(), 5, 'sent')",
                [alert]
            )
        }
        return World(
            memberOfA: world.memberOfA, tenantAdminOfA: world.tenantAdminOfA, hostAdmin: world.hostAdmin,
            superAdmin: world.superAdmin, stranger: world.stranger,
            integrationA: world.integrationA, integrationB: world.integrationB, alertsA: alertsA, alertsB: alertsB
        )
    }

    static func visibleAlerts(_ database: TestDatabase, as user: UUID?) async throws -> Set<UUID> {
        try await database.withConnection { connection in
            try await connection.actAsAuthenticatedUser(user)
            return Set(try await connection.query("SELECT id FROM integration_alert_history").map { try $0.decode("id", as: UUID.self) })
        }
    }

    static func visibleAttempts(_ database: TestDatabase, as user: UUID?) async throws -> Set<UUID> {
        try await database.withConnection { connection in
            try await connection.actAsAuthenticatedUser(user)
            return Set(try await connection.query("SELECT alert_id FROM integration_alert_attempts").map { try $0.decode("alert_id", as: UUID.self) })
        }
    }

    @Test func tenantMembersSeeOnlyTheirTenantsAlertsAndAdminsSeeAll() async throws {
        try await TestPostgres.withDatabase { database in
            let world = try await database.withConnection { try await Self.world($0) }
            let all = Set(world.alertsA + world.alertsB)
            #expect(try await Self.visibleAlerts(database, as: world.memberOfA) == Set(world.alertsA))
            #expect(try await Self.visibleAlerts(database, as: world.tenantAdminOfA) == Set(world.alertsA))
            #expect(try await Self.visibleAlerts(database, as: world.hostAdmin) == all)
            #expect(try await Self.visibleAlerts(database, as: world.superAdmin) == all)
            #expect(try await Self.visibleAlerts(database, as: world.stranger).isEmpty)
            #expect(try await Self.visibleAlerts(database, as: nil).isEmpty)
        }
    }

    @Test func attemptsAreVisibleExactlyWhereTheirAlertIs() async throws {
        try await TestPostgres.withDatabase { database in
            let world = try await database.withConnection { try await Self.world($0) }
            #expect(try await Self.visibleAttempts(database, as: world.memberOfA) == Set(world.alertsA))
            #expect(try await Self.visibleAttempts(database, as: world.hostAdmin) == Set(world.alertsA + world.alertsB))
            #expect(try await Self.visibleAttempts(database, as: world.stranger).isEmpty)
        }
    }

    /// Supabase's default privileges give anon ALL on new tables; row-level security and the
    /// migrations' revokes leave it nothing of the alert history or its attempts.
    @Test func anonReadsNoAlertsAndNoAttemptsAndCannotEmptyThem() async throws {
        try await TestPostgres.withDatabase { database in
            _ = try await database.withConnection { try await Self.world($0) }
            try await database.withConnection { connection in
                try await connection.execute("SET ROLE anon")
                for table in ["integration_alert_history", "integration_alert_attempts"] {
                    await #expect(throws: PostgresError.self, "anon reads \(table)") {
                        try await connection.query("SELECT count(*) AS n FROM \(table)")
                    }
                }
            }
            for table in ["integration_alert_history", "integration_alert_attempts"] {
                try await database.withConnection { connection in
                    try await connection.actAsAuthenticatedUser(nil)
                    // TRUNCATE is not subject to row-level security: only a missing privilege stops it.
                    await #expect(throws: PostgresError.self, "an API user truncates \(table)") {
                        try await connection.execute("TRUNCATE \(table) CASCADE")
                    }
                }
            }
            let left = try await database.withConnection { connection in
                try await connection.query("SELECT count(*) AS n FROM integration_alert_attempts")[0].decode("n", as: Int.self)
            }
            #expect(left == 3)
        }
    }

    /// The ETL runner writes with the service key (service_role, BYPASSRLS, not an admin of any
    /// tenant): its failed run queues the alerts through the trigger all the same.
    @Test func theETLWritersFailedRunQueuesItsAlerts() async throws {
        try await TestPostgres.withDatabase { database in
            let integration = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                return try await rows.integration(tenant: try await rows.tenant(), emails: ["ops@example.com"], webhook: "https://hooks.example.com/a")
            }
            let writer = try await PostgresConnection.connect(try database.etlWriterConnectionString, logger: TestPostgres.logger)
            let role = try await writer.query("SELECT current_user AS role")[0].decode("role", as: String.self)
            #expect(role == "service_role")
            let run = try await PlatformRows(writer).syncRun(integration: integration)
            try await PlatformRows(writer).setStatus(of: run, to: "failed")
            await writer.close()
            let channels = try await database.withConnection { connection in
                try await connection.query(
                    "SELECT alert_channel FROM integration_alert_history WHERE sync_history_id = $1 AND delivery_status = 'pending' ORDER BY 1", [run]
                ).map { try $0.decode("alert_channel", as: String.self) }
            }
            #expect(channels == ["email", "webhook"])
        }
    }

    static func insertAlert(_ database: TestDatabase, as user: UUID, for integration: UUID) async throws -> Bool {
        try await database.withConnection { connection in
            try await connection.actAsAuthenticatedUser(user)
            do {
                try await connection.query(
                    "INSERT INTO integration_alert_history (integration_config_id, alert_type, alert_channel) VALUES ($1, 'failure', 'email')",
                    [integration]
                )
                return true
            } catch let error as PostgresError where error.sqlState == "42501" {
                return false
            }
        }
    }

    @Test func onlyAdminsInsertAlerts() async throws {
        try await TestPostgres.withDatabase { database in
            let world = try await database.withConnection { try await Self.world($0) }
            #expect(try await Self.insertAlert(database, as: world.memberOfA, for: world.integrationA) == false)
            #expect(try await Self.insertAlert(database, as: world.stranger, for: world.integrationA) == false)
            #expect(try await Self.insertAlert(database, as: world.tenantAdminOfA, for: world.integrationA))
            #expect(try await Self.insertAlert(database, as: world.tenantAdminOfA, for: world.integrationB) == false)
            #expect(try await Self.insertAlert(database, as: world.hostAdmin, for: world.integrationB))
            #expect(try await Self.insertAlert(database, as: world.superAdmin, for: world.integrationA))
        }
    }

    @Test func apiUsersCannotWriteAttemptsOrChangeAlerts() async throws {
        try await TestPostgres.withDatabase { database in
            let world = try await database.withConnection { try await Self.world($0) }
            try await database.withConnection { connection in
                try await connection.actAsAuthenticatedUser(world.hostAdmin)
                await #expect(throws: PostgresError.self) {
                    try await connection.query(
                        "INSERT INTO integration_alert_attempts (alert_id, attempt_number, started_at, duration_ms, outcome) VALUES ($1, 2, now(), 1, 'sent')",
                        [world.alertsA[0]]
                    )
                }
                await #expect(throws: PostgresError.self) {
                    try await connection.query("UPDATE integration_alert_history SET delivery_status = 'sent' WHERE id = $1", [world.alertsA[0]])
                }
            }
        }
    }
}
