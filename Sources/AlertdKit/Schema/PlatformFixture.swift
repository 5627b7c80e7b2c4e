import AlertdPostgres
import Foundation

/// Creates, on an empty database, the ETL platform's existing tables and the Supabase pieces
/// plain PostgreSQL lacks, for local trials and tests. Never part of the production path.
public struct PlatformFixture: Sendable {
    public let connection: PostgresConnection
    public let sql: String

    public init(connection: PostgresConnection, sql: String) {
        self.connection = connection
        self.sql = sql
    }

    public static func load(from directory: SQLDirectory) throws -> String {
        do {
            return try String(contentsOf: directory.platformFixtureURL, encoding: .utf8)
        } catch {
            throw AlertdError(.sqlFilesNotFound, "Cannot read \(directory.platformFixtureURL.path): \(error.localizedDescription)")
        }
    }

    /// Applies the fixture in one transaction; refuses, changing nothing, if any of the platform's
    /// tables already exists.
    public func apply(report: @Sendable (String) -> Void) async throws {
        let sql = self.sql
        let existing = try await connection.withSession { session in
            try Migrator.requiredTables.filter { table in
                try session.query("SELECT to_regclass($1) IS NOT NULL AS present", ["public.\(table)"])[0].decode("present", as: Bool.self)
            }
        }
        guard existing.isEmpty else {
            throw AlertdError(
                .platformExists,
                "Refusing to run init-platform: the database already has the platform's tables \(existing.joined(separator: ", ")). Nothing was changed.",
                hint: "init-platform is for an empty local database. Against the platform's database, run alertd db migrate."
            )
        }
        report("Creating the platform's schema: roles anon, authenticated, service_role; schema auth with auth.uid(); extensions uuid-ossp, pgcrypto ...")
        try await connection.withTransaction { session in
            try session.execute(sql)
            _ = session.takeNotices()
        }
        report("Created tables \(Migrator.requiredTables.joined(separator: ", ")) with row-level security for tenant members.")
    }
}
