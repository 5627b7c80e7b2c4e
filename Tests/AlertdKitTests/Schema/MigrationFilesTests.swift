import AlertdKit
import AlertdTestSupport
import Foundation
import Testing

@Suite struct MigrationFilesTests {
    @Test func loadsTheMigrationsInOrderWithTheirRollbacks() throws {
        let migrations = try Migration.load(from: TestPostgres.sqlDirectory)
        #expect(migrations.map(\.id) == ["20251122_add_retry_and_alerts", "20251124_alertd_outbox", "20251125_alertd_dispatcher_role", "20251126_alertd_notify_when_waited_for", "20251127_alertd_incidents", "20251128_alertd_incident_groups", "20251129_alertd_silent_failures", "20251130_alertd_destination_health", "20251201_alertd_cheaper_repeats", "20251202_alertd_hand_written_alerts", "20251203_alertd_signing_secrets", "20251204_alertd_message_limits"])
        #expect(migrations.allSatisfy { $0.rollbackSQL != nil })
    }

    @Test func knowsWhichTablesEachRollbackDrops() throws {
        let migrations = try Migration.load(from: TestPostgres.sqlDirectory)
        #expect(migrations[0].tablesDroppedByRollback == ["integration_alert_history"])
        #expect(migrations[1].tablesDroppedByRollback == ["integration_alert_attempts"])
        #expect(migrations[2].tablesDroppedByRollback == [])
        // alertd_settings holds settings, not records: dropped without asking.
        #expect(migrations[4].tablesDroppedByRollback == ["integration_alert_incidents"])
    }

    @Test func knowsWhichOfThePlatformsColumnsEachRollbackDrops() throws {
        let migrations = try Migration.load(from: TestPostgres.sqlDirectory)
        let seed = migrations[0].platformColumnsDroppedByRollback.map { "\($0.table).\($0.column)" }
        #expect(seed.contains("integration_configs.alert_emails"))
        #expect(seed.contains("integration_configs.alert_webhook_url"))
        #expect(seed.contains("integration_sync_history.retry_count"))
        #expect(seed.contains("integration_sync_configs.watermark_value"))
        #expect(seed.count == 13)
        // The incidents' column on the alert history is the platform table's; the incidents'
        // own table's columns are alertd's bookkeeping.
        #expect(migrations[4].platformColumnsDroppedByRollback.map { "\($0.table).\($0.column)" } == ["integration_alert_history.incident_id"])
        #expect(migrations[6].platformColumnsDroppedByRollback.isEmpty)
    }

    @Test func readsDropColumnClausesOfEveryForm() {
        let migration = Migration(version: "1", name: "x", sql: "", rollbackSQL: """
            -- ALTER TABLE integration_configs DROP COLUMN commented_out;
            ALTER TABLE integration_configs DROP COLUMN IF EXISTS one;
            alter table only integration_sync_history
              drop column two,
              DROP COLUMN IF EXISTS three;
            ALTER TABLE alertd_settings DROP COLUMN not_the_platforms;
            DROP TABLE integration_alert_history;
            """)
        #expect(migration.platformColumnsDroppedByRollback.map { "\($0.table).\($0.column)" } == [
            "integration_configs.one", "integration_sync_history.two", "integration_sync_history.three",
        ])
    }

    @Test func readsDropTableStatementsOnly() {
        let migration = Migration(version: "1", name: "x", sql: "", rollbackSQL: """
            -- DROP TABLE commented_out;
            DROP TABLE IF EXISTS first CASCADE;
            drop table second;
            DROP VIEW not_a_table;
            ALTER TABLE t DROP COLUMN c;
            """)
        #expect(migration.tablesDroppedByRollback == ["first", "second"])
    }

    @Test func rejectsAFolderWithoutMigrations() throws {
        let empty = FileManager.default.temporaryDirectory.appending(path: "alertd-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: AlertdError.self) { try SQLDirectory.locate(flag: empty.path) }
    }

    @Test func findsTheCheckoutsSQLWithoutBeingTold() throws {
        let directory = try SQLDirectory.locate(flag: nil, environment: [:])
        #expect(FileManager.default.fileExists(atPath: directory.migrationsURL.appending(path: "20251122_add_retry_and_alerts.sql").path))
    }

    @Test func migrationFilesAreNamedForTheSupabaseCLI() throws {
        // The Supabase CLI applies every <digits>_<name>.sql in supabase/migrations, in name order,
        // so nothing else may live there.
        let files = try FileManager.default.contentsOfDirectory(atPath: TestPostgres.sqlDirectory.migrationsURL.path)
        for file in files {
            #expect(file.range(of: #"^[0-9]+_[a-z0-9_]+\.sql$"#, options: .regularExpression) != nil, "\(file)")
        }
    }
}

@Suite struct DatabaseSettingsTests {
    @Test func theFlagWinsThenTheVariableThenTheFile() throws {
        let file = FileManager.default.temporaryDirectory.appending(path: "alertd-url-\(UUID().uuidString)")
        try "host=fromfile dbname=x\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }

        let fromFlag = try DatabaseSettings.connectionString(flag: "host=flag", environment: ["ALERTD_DATABASE_URL": "host=env"])
        #expect(fromFlag.host == "flag")
        let fromVariable = try DatabaseSettings.connectionString(flag: nil, environment: ["ALERTD_DATABASE_URL": "host=env", "ALERTD_DATABASE_URL_FILE": file.path])
        #expect(fromVariable.host == "env")
        let fromFile = try DatabaseSettings.connectionString(flag: nil, environment: ["ALERTD_DATABASE_URL_FILE": file.path])
        #expect(fromFile.host == "fromfile")
    }

    @Test func missingOrBadInputIsAClearError() {
        #expect(throws: AlertdError.self) { try DatabaseSettings.connectionString(flag: nil, environment: [:]) }
        #expect(throws: AlertdError.self) {
            try DatabaseSettings.connectionString(flag: nil, environment: ["ALERTD_DATABASE_URL_FILE": "/nonexistent/alertd-url"])
        }
        let error = #expect(throws: (any Error).self) {
            try DatabaseSettings.connectionString(flag: "postgresql://u:Pa55word@h/db?no_such_option=1", environment: [:])
        }
        if let error {
            #expect("\(error)".contains("--database-url"))
            #expect(!"\(error)".contains("Pa55word"))
        }
    }
}
