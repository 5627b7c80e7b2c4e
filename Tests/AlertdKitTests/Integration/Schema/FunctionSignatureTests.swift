import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// alertd's migrations keep every function and view of the platform's own version of the seed
/// migration callable as before: the same names, argument names, types, defaults and return
/// types, the same view columns. PostgreSQL refuses to rename a parameter with CREATE OR REPLACE,
/// and callers pass arguments by name, so a difference here fails a customer's migration.
@Suite struct FunctionSignatureTests {
    struct Signature: Hashable, CustomStringConvertible {
        let name: String
        let arguments: String
        let result: String
        var description: String { "\(name)(\(arguments)) RETURNS \(result)" }
    }

    static let signaturesQuery = """
        SELECT p.proname AS name, pg_get_function_arguments(p.oid) AS arguments, pg_get_function_result(p.oid) AS result
          FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
        """

    static let viewColumnsQuery = """
        SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) AS column_
          FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v' AND a.attnum > 0
         ORDER BY c.relname, a.attnum
        """

    static func signatures(_ connection: PostgresConnection) async throws -> [String: Signature] {
        let rows = try await connection.query(signaturesQuery)
        return Dictionary(uniqueKeysWithValues: try rows.map { row in
            let signature = Signature(
                name: try row.decode("name"), arguments: try row.decode("arguments"), result: try row.decode("result")
            )
            return (signature.name, signature)
        })
    }

    static func viewColumns(_ connection: PostgresConnection) async throws -> [String] {
        try await connection.query(viewColumnsQuery).map { try $0.decode("column_") }
    }

    @Test func everyFunctionAndViewOfThePlatformsVersionKeepsItsSignature() async throws {
        let (platformFunctions, platformViews) = try await TestPostgres.withDatabase(.platform) { database in
            try await database.applyWithPsql(SchemaDumpTests.platformVersionFile)
            return try await database.withConnection { (try await Self.signatures($0), try await Self.viewColumns($0)) }
        }
        // The contract as the platform's file states it, so that an edited fixture fails too.
        #expect(platformFunctions["calculate_next_retry"]?.description
            == "calculate_next_retry(retry_count integer, base_delay_seconds integer DEFAULT 60) RETURNS timestamp without time zone")
        #expect(platformFunctions["schedule_sync_retry"]?.description
            == "schedule_sync_retry(sync_id uuid, max_retry_attempts integer DEFAULT 3) RETURNS boolean")
        #expect(platformFunctions["update_sync_watermark"]?.description
            == "update_sync_watermark(sync_config_id uuid, new_watermark_value text) RETURNS void")
        #expect(platformViews.count == 9)

        try await TestPostgres.withDatabase(.migrated) { database in
            try await database.withConnection { connection in
                let alertdFunctions = try await Self.signatures(connection)
                for (name, platform) in platformFunctions.sorted(by: { $0.key < $1.key }) {
                    #expect(alertdFunctions[name] == platform, "alertd's \(name) differs from the platform's: \(alertdFunctions[name].map(String.init(describing:)) ?? "missing") vs \(platform)")
                }
                let alertdViews = try await Self.viewColumns(connection)
                for column in platformViews {
                    #expect(alertdViews.contains(column), "view column \(column) of the platform's version is missing or changed")
                }
            }
        }
    }

    @Test func thePlatformsCallersWorkOverAlertdsVersion() async throws {
        try await TestPostgres.withDatabase(.platform) { database in
            try await database.applyWithPsql(SchemaDumpTests.platformVersionFile)
            try await database.withConnection { connection in
                try await Migrator(connection: connection, migrations: Migration.load(from: TestPostgres.sqlDirectory)).migrate { _ in }
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant())
                let run = try await rows.syncRun(integration: integration, status: "failed")
                // The platform UI's call, by argument name.
                let scheduled = try await connection.query(
                    "SELECT schedule_sync_retry(sync_id => $1, max_retry_attempts => 3) AS scheduled", [run]
                )[0].decode("scheduled", as: Bool.self)
                #expect(scheduled)
                let config: UUID = try await connection.query(
                    "INSERT INTO integration_sync_configs (integration_config_id, endpoint_name) VALUES ($1, 'employees') RETURNING id", [integration]
                )[0].decode("id")
                try await connection.query(
                    "SELECT update_sync_watermark(sync_config_id => $1, new_watermark_value => $2)", [config, "42"]
                )
                // An id that no longer exists raised nothing in the platform's version; it still does not.
                try await connection.query("SELECT update_sync_watermark(sync_config_id => $1, new_watermark_value => 'x')", [UUID()])
                let next = try await connection.query(
                    "SELECT calculate_next_retry(retry_count => 1, base_delay_seconds => 60) - now()::timestamp AS delay"
                )
                #expect(next.count == 1)
            }
        }
    }
}
