import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// A collector for the lines a command reports.
final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}

@Suite struct MigratorTests {
    /// alertd's migrations, all of them.
    static var migrationCount: Int { (try? Migration.load(from: TestPostgres.sqlDirectory).count) ?? 0 }

    static func migrator(_ connection: PostgresConnection, _ directory: SQLDirectory = TestPostgres.sqlDirectory) throws -> Migrator {
        Migrator(connection: connection, migrations: try Migration.load(from: directory))
    }

    @Test func migrateAppliesEachPendingMigrationOnceAndRecordsIt() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            try await database.withConnection { connection in
                let migrator = try Self.migrator(connection)
                #expect(try await migrator.status().allSatisfy { !$0.isApplied })
                let lines = Lines()
                let applied = try await migrator.migrate(report: lines.append)
                #expect(applied.map(\.id) == ["20251122_add_retry_and_alerts", "20251124_alertd_outbox", "20251125_alertd_dispatcher_role", "20251126_alertd_notify_when_waited_for", "20251127_alertd_incidents", "20251128_alertd_incident_groups", "20251129_alertd_silent_failures", "20251130_alertd_destination_health", "20251201_alertd_cheaper_repeats", "20251202_alertd_hand_written_alerts", "20251203_alertd_signing_secrets", "20251204_alertd_message_limits"])
                #expect(lines.all.contains("Applying 20251122_add_retry_and_alerts ..."))
                #expect(lines.all.contains { $0.hasPrefix("Applied 20251124_alertd_outbox in ") })
                let statuses = try await migrator.status()
                #expect(statuses.map(\.id) == applied.map(\.id))
                #expect(statuses.allSatisfy { $0.isApplied && $0.applied?.modifiedSince == false && $0.applied?.by == PlatformRole.owner.name })

                let again = Lines()
                #expect(try await migrator.migrate(report: again.append).isEmpty)
                #expect(again.all == ["Nothing to apply: all \(Self.migrationCount) migrations are applied."])
            }
        }
    }

    @Test func migrateNamesWhatThePlatformLacksAndChangesNothing() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            try await database.withConnection { connection in
                try await connection.execute("CREATE TABLE tenants (id uuid PRIMARY KEY)")
                let error = await #expect(throws: AlertdError.self) {
                    try await Self.migrator(connection).migrate { _ in }
                }
                if let error {
                    #expect(error.code == .platformMissing)
                    for piece in ["table tenant_users", "table integration_configs", "table integration_sync_configs", "table integration_sync_history", "function auth.uid()"] {
                        #expect(error.message.contains(piece), "\(piece)")
                    }
                    #expect(!error.message.contains("table tenants,"))
                }
                let bookkeeping = try await connection.query("SELECT to_regnamespace('alertd') IS NULL AS absent")
                #expect(try bookkeeping[0].decode("absent", as: Bool.self))
            }
        }
    }

    @Test func twoInstancesMigratingAtOnceApplyEachMigrationOnce() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            let first = try await database.connect()
            let second = try await database.connect()
            async let one = Self.migrator(first).migrate { _ in }
            async let two = Self.migrator(second).migrate { _ in }
            let applied = try await one.map(\.id) + two.map(\.id)
            #expect(applied.sorted() == ["20251122_add_retry_and_alerts", "20251124_alertd_outbox", "20251125_alertd_dispatcher_role", "20251126_alertd_notify_when_waited_for", "20251127_alertd_incidents", "20251128_alertd_incident_groups", "20251129_alertd_silent_failures", "20251130_alertd_destination_health", "20251201_alertd_cheaper_repeats", "20251202_alertd_hand_written_alerts", "20251203_alertd_signing_secrets", "20251204_alertd_message_limits"])
            let records = try await first.query("SELECT count(*) AS n FROM alertd.schema_migrations")
            #expect(try records[0].decode("n", as: Int.self) == Self.migrationCount)
            await first.close()
            await second.close()
        }
    }

    /// A copy of the SQL folder, with `edit` applied to it.
    static func sqlCopy(_ edit: (URL) throws -> Void) throws -> SQLDirectory {
        let copy = FileManager.default.temporaryDirectory.appending(path: "alertd-sql-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: TestPostgres.sqlDirectory.url, to: copy)
        try edit(copy)
        return SQLDirectory(url: copy)
    }

    @Test func aFailingMigrationLeavesNothingOfItselfBehind() async throws {
        let directory = try Self.sqlCopy { copy in
            try """
            CREATE TABLE half_done (id int);
            SELECT no_such_function();
            """.write(to: copy.appending(path: "supabase/migrations/20251231_broken.sql"), atomically: true, encoding: .utf8)
        }
        defer { try? FileManager.default.removeItem(at: directory.url) }
        try await TestPostgres.withDatabase(.platform) { database in
            try await database.withConnection { connection in
                let migrator = try Self.migrator(connection, directory)
                let error = await #expect(throws: AlertdError.self) {
                    try await migrator.migrate { _ in }
                }
                if let error {
                    #expect(error.code == .migrationFailed)
                    #expect(error.message.contains("20251231_broken"))
                    #expect(error.message.contains("no_such_function"))
                }
                let statuses = try await migrator.status()
                #expect(statuses.map(\.isApplied) == Array(repeating: true, count: Self.migrationCount) + [false])
                #expect(try await connection.query("SELECT to_regclass('half_done') IS NULL AS gone")[0].decode("gone", as: Bool.self))
            }
        }
    }

    @Test func statusNoticesAMigrationEditedAfterItWasApplied() async throws {
        let directory = try Self.sqlCopy { copy in
            let file = copy.appending(path: "supabase/migrations/20251124_alertd_outbox.sql")
            try (String(contentsOf: file, encoding: .utf8) + "\n-- edited\n").write(to: file, atomically: true, encoding: .utf8)
        }
        defer { try? FileManager.default.removeItem(at: directory.url) }
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let statuses = try await Self.migrator(connection, directory).status()
                #expect(statuses.map { $0.applied?.modifiedSince } == [false, true] + Array(repeating: false, count: Self.migrationCount - 2))
            }
        }
    }

    @Test func rollbackUndoesTheNewestByDefault() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let migrator = try Self.migrator(connection)
                let undone = try await migrator.rollback(all: false, force: false) { _ in }
                #expect(undone == ["20251204_alertd_message_limits"])
                #expect(try await migrator.status().map(\.isApplied) == Array(repeating: true, count: Self.migrationCount - 1) + [false])
                #expect(try await migrator.migrate { _ in }.map(\.id) == ["20251204_alertd_message_limits"])
            }
        }
    }

    @Test func rollbackRefusesToDropTablesThatHoldRowsUnlessForced() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), emails: ["ops@example.com"])
                try await rows.syncRun(integration: integration, status: "failed")
                let alert: UUID = try await connection.query("SELECT id FROM integration_alert_history")[0].decode("id")
                try await connection.query(
                    "INSERT INTO integration_alert_attempts (alert_id, attempt_number, started_at, duration_ms, outcome) VALUES ($1, 1, now(), 3, 'retry')",
                    [alert]
                )
                let migrator = try Self.migrator(connection)
                // The signing secrets' table is empty (no integration names a webhook URL); the
                // insert policy and the cheaper repeats drop no table; destination health's
                // table is empty; silent failures' and grouping's rollbacks drop columns and a cache.
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251204_alertd_message_limits"])
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251203_alertd_signing_secrets"])
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251202_alertd_hand_written_alerts"])
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251201_alertd_cheaper_repeats"])
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251130_alertd_destination_health"])
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251129_alertd_silent_failures"])
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251128_alertd_incident_groups"])
                // The failed run opened an incident: the incidents' rollback drops their table.
                let incidents = await #expect(throws: AlertdError.self) {
                    try await migrator.rollback(all: false, force: false) { _ in }
                }
                #expect(incidents?.message.contains("integration_alert_incidents holds 1 row") == true)
                #expect(try await migrator.rollback(all: false, force: true) { _ in } == ["20251127_alertd_incidents"])
                // The next two (the trigger's notification, alertd's role) drop no table: they roll
                // back over rows.
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251126_alertd_notify_when_waited_for"])
                #expect(try await migrator.rollback(all: false, force: false) { _ in } == ["20251125_alertd_dispatcher_role"])
                let before = try await database.schemaDump()
                for all in [false, true] {
                    let error = await #expect(throws: AlertdError.self) {
                        try await migrator.rollback(all: all, force: false) { _ in }
                    }
                    if let error {
                        #expect(error.code == .rollbackRefused)
                        #expect(error.message.contains("integration_alert_attempts holds 1 row"))
                        #expect(error.message.contains("Nothing was changed"))
                        #expect(error.hint?.contains("--force") == true)
                        if all {
                            #expect(error.message.contains("integration_alert_history holds 1 row"))
                            // The platform's own columns, with its data in them, are named too.
                            #expect(error.message.contains("integration_configs.alert_emails holds values in 1 row"), "\(error.message)")
                            #expect(!error.message.contains("alert_webhook_url"), "no integration has a webhook URL")
                        }
                    }
                }
                #expect(try await database.schemaDump() == before)
                #expect(try await migrator.status().map(\.isApplied) == [true, true] + Array(repeating: false, count: Self.migrationCount - 2))

                let lines = Lines()
                #expect(try await migrator.rollback(all: true, force: true, report: lines.append).count == 2)
                #expect(lines.all.contains("Dropping integration_alert_history with its 1 rows (--force)."))
                #expect(lines.all.contains("Dropping integration_configs.alert_emails with its values in 1 rows (--force)."))
                #expect(try await connection.query("SELECT to_regclass('integration_alert_history') IS NULL AS gone")[0].decode("gone", as: Bool.self))
            }
        }
    }

    @Test func rollbackWithNothingAppliedIsAnError() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            try await database.withConnection { connection in
                let error = await #expect(throws: AlertdError.self) {
                    try await Self.migrator(connection).rollback(all: false, force: false) { _ in }
                }
                if let error {
                    #expect(error.code == .nothingToRollBack)
                }
            }
        }
    }
}

@Suite struct PlatformFixtureTests {
    @Test func initPlatformRefusesWhenThePlatformsTablesExist() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            try await database.withConnection { connection in
                let before = try await database.schemaDump()
                let fixture = PlatformFixture(connection: connection, sql: try PlatformFixture.load(from: TestPostgres.sqlDirectory))
                let error = await #expect(throws: AlertdError.self) {
                    try await fixture.apply { _ in }
                }
                if let error {
                    #expect(error.code == .platformExists)
                    #expect(error.message.contains("integration_sync_history"))
                }
                #expect(try await database.schemaDump() == before)
            }
        }
    }

    @Test func initPlatformGivesWhatSupabaseHas() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            try await database.withConnection { connection in
                let row = try await connection.query(
                    """
                    SELECT (SELECT count(*) FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role')) AS roles,
                           (SELECT count(*) FROM pg_extension WHERE extname IN ('uuid-ossp', 'pgcrypto')) AS extensions,
                           to_regprocedure('auth.uid()') IS NOT NULL AS uid
                    """
                )[0]
                #expect(try row.decode("roles", as: Int.self) == 3)
                #expect(try row.decode("extensions", as: Int.self) == 2)
                #expect(try row.decode("uid", as: Bool.self))
                try await connection.query("SELECT set_config('request.jwt.claims', $1, false)", [#"{"sub":"6f1c1b1e-3f0e-4b7a-9a55-2b1f3c4d5e6f"}"#])
                #expect(try await connection.query("SELECT auth.uid() AS uid")[0].decode("uid", as: UUID.self) == UUID(uuidString: "6f1c1b1e-3f0e-4b7a-9a55-2b1f3c4d5e6f"))
            }
        }
    }
}

@Suite struct SchemaVerifierTests {
    @Test func everythingIsPresentAfterTheMigrations() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let results = try await SchemaVerifier(connection: connection).verify()
                #expect(results.count > 40)
                #expect(results.filter { !$0.present }.map(\.item) == [])
            }
        }
    }

    @Test func whatIsMissingIsNamedItemByItem() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                try await connection.execute("""
                    DROP POLICY alert_history_insert_policy ON integration_alert_history;
                    DROP TRIGGER alertd_enqueue_on_insert ON integration_sync_history;
                    REVOKE EXECUTE ON FUNCTION schedule_sync_retry(uuid, integer) FROM authenticated, PUBLIC;
                    ALTER TABLE integration_configs DROP COLUMN alert_webhook_url;
                    """)
                let missing = try await SchemaVerifier(connection: connection).verify().filter { !$0.present }.map(\.item)
                #expect(missing == [
                    "column integration_configs.alert_webhook_url",
                    "policy alert_history_insert_policy on integration_alert_history",
                    "grant execute on schedule_sync_retry(uuid,integer) to authenticated",
                    "trigger alertd_enqueue_on_insert on integration_sync_history",
                    "alert_history_insert_policy admits origin 'manual' only",
                ])
            }
        }
    }

    @Test func thePlatformAloneFailsTheSeedsOwnChecks() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            try await database.withConnection { connection in
                let results = try await SchemaVerifier(connection: connection).verify()
                #expect(results.allSatisfy { !$0.present })
                // Checks that read a table which is not there say "missing", never PostgreSQL's
                // error about it.
                let notes = results.compactMap(\.note)
                #expect(notes.isEmpty, "\(notes)")
            }
        }
    }

    @Test func aPartlyRolledBackSchemaIsReportedItemByItem() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let migrator = Migrator(connection: connection, migrations: try Migration.load(from: TestPostgres.sqlDirectory))
                // Back to before the incidents (20251127): every newer migration undone.
                while try await migrator.rollback(all: false, force: true) { _ in } != ["20251127_alertd_incidents"] {}
                let results = try await SchemaVerifier(connection: connection).verify()
                let missing = results.filter { !$0.present }.map(\.item)
                #expect(missing.contains("table alertd_settings with its row"))
                #expect(!missing.contains("column integration_configs.alert_emails"))
                #expect(results.compactMap(\.note).isEmpty, "\(results.compactMap(\.note))")
            }
        }
    }
}
