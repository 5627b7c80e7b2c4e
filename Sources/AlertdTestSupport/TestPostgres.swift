import AlertdKit
import AlertdPostgres
import Foundation
import Logging

/// Throwaway databases on the PostgreSQL cluster that `deploy/dev/test.sh` starts.
///
/// The cluster's superuser URL comes from `ALERTD_TEST_DATABASE_URL`. Without it, or when the
/// server does not answer, every test that needs it fails with a message saying so: none skips.
public enum TestPostgres {
    public static let variable = "ALERTD_TEST_DATABASE_URL"

    public static let logger: Logger = {
        var logger = Logger(label: "alertd.tests")
        logger.logLevel = .warning
        return logger
    }()

    /// The test cluster's password, so tests can check that no output shows it.
    public static var password: String {
        (try? serverConnectionString())?.value(of: "password") ?? "(no password)"
    }

    public static func serverConnectionString() throws -> PostgresConnectionString {
        guard let url = ProcessInfo.processInfo.environment[variable], !url.isEmpty else {
            throw TestSetupError(
                "\(variable) is not set. Run the tests with deploy/dev/test.sh, which starts PostgreSQL, or export the URL printed by deploy/dev/pg.sh start."
            )
        }
        return try PostgresConnectionString(url)
    }

    /// The checkout's root folder.
    public static let packageRoot: URL = URL(filePath: #filePath)
        .deletingLastPathComponent().appending(path: "../..").standardized

    public static var sqlDirectory: SQLDirectory {
        SQLDirectory(url: packageRoot.appending(path: "deploy"))
    }

    /// The roles of a Supabase project, made once per test process with
    /// deploy/dev/supabase-roles.sql as the cluster's superuser.
    static let supabaseRoles = OnceTask {
        let script = packageRoot.appending(path: "deploy/dev/supabase-roles.sql").path
        let result = try await TestProcess.run("/usr/bin/psql", [
            "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1",
            "-v", "owner_password=\(PlatformRole.owner.password)", "-v", "etl_password=\(PlatformRole.etlWriter.password)",
            "--dbname", try serverConnectionString().conninfoForChildProcesses, "--file", script,
        ])
        guard result.status == 0 else {
            throw TestSetupError("psql -f supabase-roles.sql failed (exit \(result.status)): \(result.standardError)")
        }
    }

    /// What a new test database gets before the test runs.
    public enum Setup: Sendable {
        /// Nothing: an empty database.
        case empty
        /// The platform's tables and Supabase's pieces (`alertd db init-platform`).
        case platform
        /// The platform and every alertd migration (`alertd db migrate`).
        case migrated
    }

    /// Drops a test database; once more on a new connection if the server restarted meanwhile
    /// (the fault suite restarts it).
    private static func dropDatabase(_ name: some StringProtocol, _ admin: PostgresConnection) async throws {
        do {
            try await admin.execute("DROP DATABASE \(name) WITH (FORCE)")
        } catch let error as PostgresError where error.code == .connectionLost {
            try await admin.execute("DROP DATABASE \(name) WITH (FORCE)")
        }
    }

    /// Creates a database owned by `platform_owner` (as Supabase's `postgres` owns a project's:
    /// no superuser, CREATEROLE and BYPASSRLS), prepares it as that role, runs `body`, and drops
    /// the database afterwards, also when `body` throws. The database's connection string logs in
    /// as `platform_owner`; the cluster's superuser is only used to create and drop it.
    @discardableResult
    public static func withDatabase<T: Sendable>(
        _ setup: Setup = .migrated,
        _ body: (TestDatabase) async throws -> T
    ) async throws -> T {
        let server = try serverConnectionString()
        let name = "alertd_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try await supabaseRoles.value()
        let admin = try await PostgresConnection.connect(server, logger: logger)
        try await admin.execute("CREATE DATABASE \(name) OWNER \(PlatformRole.owner.name)")
        let database = TestDatabase(
            name: String(name),
            connectionString: server.withDatabase(String(name)).withUser(PlatformRole.owner.name, password: PlatformRole.owner.password)
        )
        do {
            let connection = try await database.connect()
            switch setup {
            case .empty:
                break
            case .platform:
                try await PlatformFixture(connection: connection, sql: PlatformFixture.load(from: sqlDirectory)).apply { _ in }
            case .migrated:
                try await PlatformFixture(connection: connection, sql: PlatformFixture.load(from: sqlDirectory)).apply { _ in }
                try await Migrator(connection: connection, migrations: Migration.load(from: sqlDirectory)).migrate { _ in }
                // Grouping holds the news of an integration's second failing endpoint for a
                // minute. Tests of everything else fail several endpoints of one integration at
                // once and expect each alert at once: their databases start without grouping
                // (as `AlertdProcess` starts alertd with ALERTD_GROUP_INTERVAL=off); the grouping
                // tests turn it on.
                try await connection.execute("UPDATE alertd_settings SET group_interval = interval '0'")
                try await AlertdRole.ensured.value()
            }
            await connection.close()
            let result = try await body(database)
            try await dropDatabase(name, admin)
            await admin.close()
            return result
        } catch {
            _ = try? await dropDatabase(name, admin)
            await admin.close()
            throw error
        }
    }
}

/// The logins deploy/dev/supabase-roles.sql makes, standing in for a Supabase project's.
public struct PlatformRole: Sendable {
    public let name: String
    public let password: String

    /// Supabase's `postgres`: owns the platform's tables and runs every migration and rollback.
    public static let owner = PlatformRole(name: "platform_owner", password: "platform-owner-test-password")
    /// The ETL runner with the service key: acts as `service_role` (BYPASSRLS).
    public static let etlWriter = PlatformRole(name: "platform_etl", password: "platform-etl-test-password")
}

/// One throwaway database.
public struct TestDatabase: Sendable {
    public let name: String
    /// As `platform_owner`, the database's owner.
    public let connectionString: PostgresConnectionString

    /// As the ETL runner writes sync runs: `platform_etl` acting as `service_role`.
    public var etlWriterConnectionString: PostgresConnectionString {
        get throws {
            try connectionString.withUser(PlatformRole.etlWriter.name, password: PlatformRole.etlWriter.password)
                .replacing(["options": "-c role=service_role"])
        }
    }

    public func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(connectionString, logger: TestPostgres.logger)
    }

    /// Connects, runs `body`, and closes the connection.
    @discardableResult
    public func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await connect()
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// The database URL with its password, for child processes (psql, pg_dump, alertd).
    public var url: String { connectionString.conninfoForChildProcesses }

    /// `pg_dump --schema-only`, without alertd's own bookkeeping schema and without the random
    /// `\restrict` key newer pg_dump versions write, so that two dumps of one schema are equal.
    public func schemaDump() async throws -> String {
        let result = try await TestProcess.run("/usr/bin/pg_dump", ["--schema-only", "--exclude-schema=alertd", "--dbname", url])
        guard result.status == 0 else {
            throw TestSetupError("pg_dump failed: \(result.standardError)")
        }
        return result.standardOutput
            .split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
            .joined(separator: "\n")
    }

    /// Runs a SQL file with psql in one transaction, as a person applying it by hand would.
    public func applyWithPsql(_ file: URL) async throws {
        let result = try await TestProcess.run("/usr/bin/psql", [
            "--no-psqlrc", "--quiet", "--single-transaction", "-v", "ON_ERROR_STOP=1", "--dbname", url, "--file", file.path,
        ])
        guard result.status == 0 else {
            throw TestSetupError("psql -f \(file.lastPathComponent) failed: \(result.standardError)")
        }
    }
}

public struct TestSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
