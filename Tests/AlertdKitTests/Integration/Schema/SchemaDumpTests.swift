import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// The migrations give the same schema whichever way they are applied, and their rollbacks give
/// back the schema from before: compared as `pg_dump --schema-only` text.
@Suite struct SchemaDumpTests {
    static var seedFile: URL { TestPostgres.sqlDirectory.migrationsURL.appending(path: "20251122_add_retry_and_alerts.sql") }
    static var outboxFile: URL { TestPostgres.sqlDirectory.migrationsURL.appending(path: "20251124_alertd_outbox.sql") }
    static var roleFile: URL { TestPostgres.sqlDirectory.migrationsURL.appending(path: "20251125_alertd_dispatcher_role.sql") }
    static var notifyFile: URL { TestPostgres.sqlDirectory.migrationsURL.appending(path: "20251126_alertd_notify_when_waited_for.sql") }
    static var incidentsFile: URL { TestPostgres.sqlDirectory.migrationsURL.appending(path: "20251127_alertd_incidents.sql") }
    static var incidentsRollbackFile: URL { TestPostgres.sqlDirectory.rollbacksURL.appending(path: "20251127_alertd_incidents.rollback.sql") }
    static var groupsFile: URL { TestPostgres.sqlDirectory.migrationsURL.appending(path: "20251128_alertd_incident_groups.sql") }
    static var groupsRollbackFile: URL { TestPostgres.sqlDirectory.rollbacksURL.appending(path: "20251128_alertd_incident_groups.rollback.sql") }
    static var silentFile: URL { TestPostgres.sqlDirectory.migrationsURL.appending(path: "20251129_alertd_silent_failures.sql") }
    static var silentRollbackFile: URL { TestPostgres.sqlDirectory.rollbacksURL.appending(path: "20251129_alertd_silent_failures.rollback.sql") }
    static var healthFile: URL { TestPostgres.sqlDirectory.migrationsURL.appending(path: "20251130_alertd_destination_health.sql") }
    static var healthRollbackFile: URL { TestPostgres.sqlDirectory.rollbacksURL.appending(path: "20251130_alertd_destination_health.rollback.sql") }
    static var repeatsFile: URL { TestPostgres.sqlDirectory.migrationsURL.appending(path: "20251201_alertd_cheaper_repeats.sql") }
    static var repeatsRollbackFile: URL { TestPostgres.sqlDirectory.rollbacksURL.appending(path: "20251201_alertd_cheaper_repeats.rollback.sql") }
    static var handWrittenFile: URL { TestPostgres.sqlDirectory.migrationsURL.appending(path: "20251202_alertd_hand_written_alerts.sql") }
    static var handWrittenRollbackFile: URL { TestPostgres.sqlDirectory.rollbacksURL.appending(path: "20251202_alertd_hand_written_alerts.rollback.sql") }
    static var secretsFile: URL { TestPostgres.sqlDirectory.migrationsURL.appending(path: "20251203_alertd_signing_secrets.sql") }
    static var secretsRollbackFile: URL { TestPostgres.sqlDirectory.rollbacksURL.appending(path: "20251203_alertd_signing_secrets.rollback.sql") }
    static var limitsFile: URL { TestPostgres.sqlDirectory.migrationsURL.appending(path: "20251204_alertd_message_limits.sql") }
    static var limitsRollbackFile: URL { TestPostgres.sqlDirectory.rollbacksURL.appending(path: "20251204_alertd_message_limits.rollback.sql") }
    static var seedRollbackFile: URL { TestPostgres.sqlDirectory.rollbacksURL.appending(path: "20251122_add_retry_and_alerts.rollback.sql") }
    static var outboxRollbackFile: URL { TestPostgres.sqlDirectory.rollbacksURL.appending(path: "20251124_alertd_outbox.rollback.sql") }
    static var platformVersionFile: URL {
        TestPostgres.packageRoot.appending(path: "Tests/AlertdKitTests/Fixtures/platform_20251122_add_retry_and_alerts.sql")
    }

    /// The dump after the seed migration on a database that never had it.
    static func freshSeedDump() async throws -> String {
        try await TestPostgres.withDatabase(.platform) { database in
            try await database.applyWithPsql(seedFile)
            return try await database.schemaDump()
        }
    }

    @Test func theSeedGivesOneSchemaOnAFreshDatabaseOverThePlatformsVersionAndTwice() async throws {
        let fresh = try await Self.freshSeedDump()
        #expect(fresh.contains("integration_alert_history"))

        let overPlatformVersion = try await TestPostgres.withDatabase(.platform) { database in
            try await database.applyWithPsql(Self.platformVersionFile)
            let platformDump = try await database.schemaDump()
            #expect(platformDump.contains("IMMUTABLE"))
            try await database.applyWithPsql(Self.seedFile)
            return try await database.schemaDump()
        }
        #expect(overPlatformVersion == fresh)

        let twice = try await TestPostgres.withDatabase(.platform) { database in
            try await database.applyWithPsql(Self.seedFile)
            try await database.applyWithPsql(Self.seedFile)
            return try await database.schemaDump()
        }
        #expect(twice == fresh)
    }

    @Test func theOutboxAppliedTwiceChangesNothing() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            try await database.applyWithPsql(Self.seedFile)
            try await database.applyWithPsql(Self.outboxFile)
            let once = try await database.schemaDump()
            try await database.applyWithPsql(Self.outboxFile)
            #expect(try await database.schemaDump() == once)
            #expect(once.contains("alertd_enqueue_sync_alerts"))
        }
    }

    @Test func rollbacksReturnTheSchemaToWhatItWasAndTheMigrationsApplyAgain() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            let before = try await database.schemaDump()
            try await database.applyWithPsql(Self.seedFile)
            let afterSeed = try await database.schemaDump()
            try await database.applyWithPsql(Self.outboxFile)
            let afterOutbox = try await database.schemaDump()

            try await database.applyWithPsql(Self.outboxRollbackFile)
            #expect(try await database.schemaDump() == afterSeed)
            try await database.applyWithPsql(Self.seedRollbackFile)
            #expect(try await database.schemaDump() == before)

            try await database.applyWithPsql(Self.seedFile)
            try await database.applyWithPsql(Self.outboxFile)
            #expect(try await database.schemaDump() == afterOutbox)
        }
    }

    @Test func theSeedsRollbackAlsoUndoesThePlatformsVersion() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            let before = try await database.schemaDump()
            try await database.applyWithPsql(Self.platformVersionFile)
            try await database.applyWithPsql(Self.seedRollbackFile)
            #expect(try await database.schemaDump() == before)
        }
    }

    @Test func theIncidentsAppliedTwiceChangeNothingAndTheirRollbackUndoesThem() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            for file in [Self.seedFile, Self.outboxFile, Self.roleFile, Self.notifyFile] {
                try await database.applyWithPsql(file)
            }
            let before = try await database.schemaDump()
            try await database.applyWithPsql(Self.incidentsFile)
            let once = try await database.schemaDump()
            #expect(once != before)
            try await database.applyWithPsql(Self.incidentsFile)
            #expect(try await database.schemaDump() == once)
            try await database.applyWithPsql(Self.incidentsRollbackFile)
            #expect(try await database.schemaDump() == before)
        }
    }

    @Test func groupingAppliedTwiceChangesNothingAndItsRollbackUndoesIt() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            for file in [Self.seedFile, Self.outboxFile, Self.roleFile, Self.notifyFile, Self.incidentsFile] {
                try await database.applyWithPsql(file)
            }
            let before = try await database.schemaDump()
            try await database.applyWithPsql(Self.groupsFile)
            let once = try await database.schemaDump()
            #expect(once != before)
            #expect(once.contains("news_due_at"))
            try await database.applyWithPsql(Self.groupsFile)
            #expect(try await database.schemaDump() == once)
            try await database.applyWithPsql(Self.groupsRollbackFile)
            #expect(try await database.schemaDump() == before)
        }
    }

    @Test func silentFailuresAppliedTwiceChangeNothingAndTheirRollbackUndoesThem() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            for file in [Self.seedFile, Self.outboxFile, Self.roleFile, Self.notifyFile, Self.incidentsFile, Self.groupsFile] {
                try await database.applyWithPsql(file)
            }
            let before = try await database.schemaDump()
            try await database.applyWithPsql(Self.silentFile)
            let once = try await database.schemaDump()
            #expect(once != before)
            #expect(once.contains("idx_sync_history_running"))
            try await database.applyWithPsql(Self.silentFile)
            #expect(try await database.schemaDump() == once)
            try await database.applyWithPsql(Self.silentRollbackFile)
            #expect(try await database.schemaDump() == before)
        }
    }

    @Test func destinationHealthAppliedTwiceChangesNothingAndItsRollbackUndoesIt() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            for file in [Self.seedFile, Self.outboxFile, Self.roleFile, Self.notifyFile, Self.incidentsFile, Self.groupsFile, Self.silentFile] {
                try await database.applyWithPsql(file)
            }
            let before = try await database.schemaDump()
            try await database.applyWithPsql(Self.healthFile)
            let once = try await database.schemaDump()
            #expect(once != before)
            #expect(once.contains("alertd_destinations"))
            try await database.applyWithPsql(Self.healthFile)
            #expect(try await database.schemaDump() == once)
            try await database.applyWithPsql(Self.healthRollbackFile)
            #expect(try await database.schemaDump() == before)
        }
    }

    @Test func cheaperRepeatsAppliedTwiceChangeNothingAndTheirRollbackUndoesThem() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            for file in [Self.seedFile, Self.outboxFile, Self.roleFile, Self.notifyFile, Self.incidentsFile, Self.groupsFile, Self.silentFile, Self.healthFile] {
                try await database.applyWithPsql(file)
            }
            let before = try await database.schemaDump()
            try await database.applyWithPsql(Self.repeatsFile)
            let once = try await database.schemaDump()
            #expect(once != before)
            #expect(once.contains("alertd_alert_addresses"))
            #expect(once.contains("<> 'suppressed'"))
            try await database.applyWithPsql(Self.repeatsFile)
            #expect(try await database.schemaDump() == once)
            try await database.applyWithPsql(Self.repeatsRollbackFile)
            #expect(try await database.schemaDump() == before)
        }
    }

    /// A run whose status changes to failed twice while its incident is open keeps a suppressed
    /// row for each time; the rollback keeps one, as the older unique index requires.
    @Test func theCheaperRepeatsRollbackKeepsOneRepeatPerRunTypeAndChannel() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), webhook: "https://hooks.example.com/x")
                try await rows.syncRun(integration: integration, status: "failed")
                let run = try await rows.syncRun(integration: integration, status: "failed")
                for status in ["running", "failed"] {
                    try await rows.setStatus(of: run, to: status)
                }
                func statuses() async throws -> [String] {
                    try await connection.query(
                        "SELECT delivery_status FROM integration_alert_history WHERE origin = 'trigger' ORDER BY created_at, delivery_status"
                    ).map { try $0.decode("delivery_status", as: String.self) }
                }
                #expect(try await statuses() == ["pending", "suppressed", "suppressed"])
                try await database.applyWithPsql(Self.repeatsRollbackFile)
                #expect(try await statuses() == ["pending", "suppressed"])
                try await rows.setStatus(of: run, to: "running")
                try await rows.setStatus(of: run, to: "failed")
                #expect(try await statuses() == ["pending", "suppressed"])
            }
        }
    }

    @Test func theIncidentsRollbackKeepsTheirAlertsUnderTheOlderWords() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant(), webhook: "https://hooks.example.com/x")
                for status in ["failed", "failed", "success"] {
                    try await rows.syncRun(integration: integration, status: status)
                }
                try await database.applyWithPsql(Self.incidentsRollbackFile)
                let kept = try await connection.query(
                    "SELECT alert_type, delivery_status, metadata->>'alertd_kind' AS kind FROM integration_alert_history ORDER BY created_at"
                ).map { "\(try $0.decode("alert_type", as: String.self))/\(try $0.decode("delivery_status", as: String.self))/\(try $0.decode("kind", as: String?.self) ?? "-")" }
                #expect(kept == ["failure/pending/-", "failure/failed/suppressed", "success/pending/recovery"])
            }
        }
    }

    @Test func alertdDbMigrateAndRollbackMatchApplyingTheFilesByHand() async throws {
        let byHand = try await TestPostgres.withDatabase(.platform) { database in
            try await database.applyWithPsql(Self.seedFile)
            try await database.applyWithPsql(Self.outboxFile)
            try await database.applyWithPsql(Self.roleFile)
            try await database.applyWithPsql(Self.notifyFile)
            try await database.applyWithPsql(Self.incidentsFile)
            try await database.applyWithPsql(Self.groupsFile)
            try await database.applyWithPsql(Self.silentFile)
            try await database.applyWithPsql(Self.healthFile)
            try await database.applyWithPsql(Self.repeatsFile)
            try await database.applyWithPsql(Self.handWrittenFile)
            try await database.applyWithPsql(Self.secretsFile)
            try await database.applyWithPsql(Self.limitsFile)
            return try await database.schemaDump()
        }
        try await TestPostgres.withDatabase(.platform) { database in
            let before = try await database.schemaDump()
            try await database.withConnection { connection in
                let migrator = Migrator(connection: connection, migrations: try Migration.load(from: TestPostgres.sqlDirectory))
                try await migrator.migrate { _ in }
                #expect(try await database.schemaDump() == byHand)
                try await migrator.rollback(all: true, force: false) { _ in }
                // The bookkeeping schema is gone too: the dump without exclusions matches.
                let bookkeeping = try await connection.query("SELECT to_regnamespace('alertd') IS NULL AS gone")
                #expect(try bookkeeping[0].decode("gone", as: Bool.self))
            }
            #expect(try await database.schemaDump() == before)
        }
    }

    @Test func theHandWrittenAlertsPolicyAppliesTwiceAndRollsBack() async throws {
        try await TestPostgres.withDatabase { database in
            let applied = try await database.schemaDump()
            try await database.applyWithPsql(Self.handWrittenRollbackFile)
            let before = try await database.schemaDump()
            #expect(before != applied)
            try await database.applyWithPsql(Self.handWrittenFile)
            #expect(try await database.schemaDump() == applied)
            try await database.applyWithPsql(Self.handWrittenFile)
            #expect(try await database.schemaDump() == applied)
            try await database.applyWithPsql(Self.handWrittenRollbackFile)
            #expect(try await database.schemaDump() == before)
        }
    }

    @Test func theSigningSecretsApplyTwiceAndRollBack() async throws {
        try await TestPostgres.withDatabase { database in
            let applied = try await database.schemaDump()
            try await database.applyWithPsql(Self.secretsRollbackFile)
            let before = try await database.schemaDump()
            #expect(!before.contains("alertd_signing_secrets"))
            try await database.applyWithPsql(Self.secretsFile)
            #expect(try await database.schemaDump() == applied)
            try await database.applyWithPsql(Self.secretsFile)
            #expect(try await database.schemaDump() == applied)
            try await database.applyWithPsql(Self.secretsRollbackFile)
            #expect(try await database.schemaDump() == before)
        }
    }

    @Test func theMessageLimitsApplyTwiceAndRollBack() async throws {
        try await TestPostgres.withDatabase { database in
            let applied = try await database.schemaDump()
            try await database.applyWithPsql(Self.limitsRollbackFile)
            let before = try await database.schemaDump()
            #expect(!before.contains("idx_alert_history_held"))
            try await database.applyWithPsql(Self.limitsFile)
            #expect(try await database.schemaDump() == applied)
            try await database.applyWithPsql(Self.limitsFile)
            #expect(try await database.schemaDump() == applied)
            try await database.applyWithPsql(Self.limitsRollbackFile)
            #expect(try await database.schemaDump() == before)
        }
    }
}
