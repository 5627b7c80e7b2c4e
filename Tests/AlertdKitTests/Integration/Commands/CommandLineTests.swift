import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// The `alertd db` commands, run as a user would run them: the built executable, its output and
/// its exit status.
@Suite struct CommandLineTests {
    /// The text with every run of spaces made one, so column widths do not matter.
    static func words(_ text: String) -> String {
        text.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }.joined(separator: "\n")
    }

    @Test func theWholeLifeOfADatabaseFromTheCommandLine() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            let environment = ["ALERTD_DATABASE_URL": database.url]
            func alertd(_ arguments: String...) async throws -> TestProcess.Result {
                try await TestProcess.alertd(["db"] + arguments, environment: environment)
            }

            let early = try await alertd("migrate")
            #expect(early.status == 1)
            #expect(early.standardError.contains("lacks what alertd's migrations build on"))
            #expect(early.standardError.contains("table integration_sync_history"))
            #expect(early.standardError.contains("alertd db init-platform"))

            let noRollback = try await alertd("rollback")
            #expect(noRollback.status == 1)
            #expect(noRollback.standardError.contains("Nothing to roll back"))

            let initialised = try await alertd("init-platform")
            #expect(initialised.status == 0, "\(initialised.allOutput)")
            #expect(initialised.standardOutput.contains("Created tables"))

            let again = try await alertd("init-platform")
            #expect(again.status == 1)
            #expect(again.standardError.contains("Refusing to run init-platform"))

            let pending = try await alertd("status")
            #expect(pending.status == 0)
            #expect(Self.words(pending.standardOutput).contains("20251122_add_retry_and_alerts pending"))
            #expect(pending.standardOutput.contains("\(MigratorTests.migrationCount) pending"))

            let notYet = try await alertd("verify")
            #expect(notYet.status == 1)
            #expect(notYet.standardOutput.contains("MISSING  table integration_alert_history"))

            let migrated = try await alertd("migrate")
            #expect(migrated.status == 0, "\(migrated.allOutput)")
            #expect(migrated.standardOutput.contains("Applying 20251122_add_retry_and_alerts ..."))
            #expect(migrated.standardOutput.contains("Applying 20251124_alertd_outbox ..."))
            #expect(migrated.standardOutput.contains("Applying 20251125_alertd_dispatcher_role ..."))
            #expect(migrated.standardOutput.contains("Applying 20251126_alertd_notify_when_waited_for ..."))
            #expect(migrated.standardOutput.contains("Applying 20251127_alertd_incidents ..."))
            #expect(migrated.standardOutput.contains("Applying 20251129_alertd_silent_failures ..."))
            #expect(migrated.standardOutput.contains("Applying 20251130_alertd_destination_health ..."))
            #expect(migrated.standardOutput.contains("Applying 20251201_alertd_cheaper_repeats ..."))

            let rerun = try await alertd("migrate")
            #expect(rerun.status == 0)
            #expect(rerun.standardOutput.contains("Nothing to apply"))

            let applied = try await alertd("status")
            #expect(applied.standardOutput.contains("All migrations are applied."))
            #expect(Self.words(applied.standardOutput).contains("20251124_alertd_outbox applied"))
            // A direct connection is a session of alertd's own (a transaction pooler's is not: the
            // fault suite's poolers scenario).
            #expect(applied.standardOutput.contains("Connection: a session of its own"), "\(applied.allOutput)")

            let verified = try await alertd("verify")
            #expect(verified.status == 0, "\(verified.allOutput)")
            #expect(verified.standardOutput.contains("present  seed check: retry columns on integration_sync_history"))
            #expect(!verified.standardOutput.contains("MISSING"))

            let newest = try await alertd("rollback")
            #expect(newest.status == 0)
            #expect(newest.standardOutput.contains("Rolled back 20251204_alertd_message_limits"))

            let everything = try await alertd("rollback", "--all")
            #expect(everything.status == 0)
            #expect(everything.standardOutput.contains("Rolled back 20251122_add_retry_and_alerts"))

            let empty = try await alertd("rollback")
            #expect(empty.status == 1)
            #expect(empty.standardError.contains("Nothing to roll back"))
        }
    }

    @Test func theDatabaseURLComesFromTheFlagTheVariableOrAFile() async throws {
        try await TestPostgres.withDatabase { database in
            let viaFlag = try await TestProcess.alertd(["db", "status", "--database-url", database.url])
            #expect(viaFlag.status == 0)

            let file = FileManager.default.temporaryDirectory.appending(path: "alertd-db-url-\(UUID().uuidString)")
            try database.url.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            let viaFile = try await TestProcess.alertd(["db", "status"], environment: ["ALERTD_DATABASE_URL_FILE": file.path])
            #expect(viaFile.status == 0, "\(viaFile.allOutput)")
            #expect(viaFile.standardOutput.contains("All migrations are applied."))
        }
    }

    @Test func badDatabaseURLsGiveAClearErrorAndNeverThePassword() async throws {
        let server = try TestPostgres.serverConnectionString()
        let cases: [(arguments: [String], expected: String)] = [
            (["db", "status"], "No database given"),
            (["db", "migrate", "--database-url", "postgresql://ops:Tr0ub4dor@db/x?no_such_option=1"], "does not parse"),
            (["db", "verify", "--database-url", "host=db password=Tr0ub4dor nonsense"], "does not parse"),
            (["db", "status", "--database-url", "postgresql://ops:Tr0ub4dor@127.0.0.1:1/x?connect_timeout=2"], "Cannot connect to PostgreSQL"),
            (["db", "status", "--database-url", "postgresql://postgres:Tr0ub4dor@\(server.host ?? "127.0.0.1"):\(server.port ?? "5432")/postgres"], "password authentication failed"),
        ]
        for (arguments, expected) in cases {
            let result = try await TestProcess.alertd(arguments)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.standardError.contains(expected), "\(arguments): \(result.standardError)")
            #expect(!result.allOutput.contains("Tr0ub4dor"), "\(arguments)")
        }
    }

    @Test func helpAndVersionWork() async throws {
        let help = try await TestProcess.alertd(["db", "--help"])
        #expect(help.status == 0)
        for command in ["init-platform", "migrate", "status", "verify", "rollback"] {
            #expect(help.standardOutput.contains(command))
        }
        let version = try await TestProcess.alertd(["--version"])
        #expect(version.status == 0)
        #expect(version.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == AlertdVersion.string)
    }
}

import AlertdKit
