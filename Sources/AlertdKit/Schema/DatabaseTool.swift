import AlertdPostgres
import Foundation
import Logging

/// The `alertd db` commands: what each does and prints, apart from how its arguments are read.
public struct DatabaseTool: Sendable {
    public let connection: PostgresConnection
    public let sqlDirectory: SQLDirectory
    /// Where the commands' lines go (standard output in the CLI).
    public let output: @Sendable (String) -> Void

    public init(connection: PostgresConnection, sqlDirectory: SQLDirectory, output: @escaping @Sendable (String) -> Void) {
        self.connection = connection
        self.sqlDirectory = sqlDirectory
        self.output = output
    }

    /// Connects, with a clear error when the server cannot be reached.
    public static func connect(
        _ connectionString: PostgresConnectionString,
        sqlDirectory: SQLDirectory,
        logger: Logger,
        output: @escaping @Sendable (String) -> Void
    ) async throws -> DatabaseTool {
        let connection = try await PostgresConnection.connect(connectionString, logger: logger)
        return DatabaseTool(connection: connection, sqlDirectory: sqlDirectory, output: output)
    }

    func migrator() throws -> Migrator {
        Migrator(connection: connection, migrations: try Migration.load(from: sqlDirectory))
    }

    public func initPlatform() async throws {
        let fixture = PlatformFixture(connection: connection, sql: try PlatformFixture.load(from: sqlDirectory))
        try await fixture.apply(report: output)
        output("The platform's schema is ready; apply alertd's migrations with: alertd db migrate")
    }

    public func migrate() async throws {
        let applied = try await migrator().migrate(report: output)
        if !applied.isEmpty {
            output("Applied \(applied.count) migration\(applied.count == 1 ? "" : "s"). Check with: alertd db verify")
        }
    }

    @discardableResult
    public func status() async throws -> [MigrationStatus] {
        let statuses = try await migrator().status()
        let width = max(statuses.map(\.id.count).max() ?? 0, "MIGRATION".count)
        output("MIGRATION".padding(toLength: width, withPad: " ", startingAt: 0) + "  STATUS   APPLIED")
        for status in statuses {
            var line = status.id.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
            if let applied = status.applied {
                line += "applied  \(Self.format(applied.at)) by \(applied.by)"
                if applied.modifiedSince { line += " (the file has changed since)" }
                if status.fileMissing { line += " (no such file in \(sqlDirectory.migrationsURL.path))" }
            } else {
                line += "pending"
            }
            output(line)
        }
        let pending = statuses.filter { !$0.isApplied }.count
        output(pending == 0 ? "All migrations are applied." : "\(pending) pending; apply with: alertd db migrate")
        output(Self.sessionLine(await PostgresSessionCheck.check(connection.connectionString), connectionString: connection.connectionString))
        return statuses
    }

    /// What `alertd db status` and `alertd config` say of the connection's sessions. The `db`
    /// commands work through a pooler in transaction mode (each migration, rollback and check
    /// is one transaction, or one statement); `alertd run` does not.
    public static func sessionLine(_ verdict: PostgresSessionVerdict, connectionString: PostgresConnectionString) -> String {
        switch verdict {
        case .own:
            return "Connection: a session of its own (direct, or a pooler in session mode): alertd run can use it."
        case .pooled(let evidence):
            return "Connection: NOT USABLE BY alertd run. " + PostgresSessionVerdict.pooledMessage(connectionString, evidence: evidence)
                + " The alertd db commands work through it."
        case .unknown(let reason):
            return "Connection: not checked (\(reason))."
        }
    }

    /// Prints every check; true when everything is present.
    @discardableResult
    public func verify() async throws -> Bool {
        let results = try await SchemaVerifier(connection: connection).verify()
        for result in results {
            var line = (result.present ? "present  " : "MISSING  ") + result.item
            if let note = result.note { line += " (\(note))" }
            output(line)
        }
        let missing = results.filter { !$0.present }.count
        output(missing == 0
            ? "All \(results.count) items are present."
            : "\(missing) of \(results.count) items are missing; apply the migrations with: alertd db migrate")
        return missing == 0
    }

    public func rollback(all: Bool, force: Bool) async throws {
        let undone = try await migrator().rollback(all: all, force: force, report: output)
        output("Rolled back \(undone.count) migration\(undone.count == 1 ? "" : "s").")
    }

    public func close() async {
        await connection.close()
    }

    static func format(_ date: Date) -> String {
        String(PostgresTimestamp.format(date).prefix(19)).replacingOccurrences(of: "T", with: " ") + " UTC"
    }
}
