import AlertdPostgres
import Foundation

/// Applies, lists and undoes alertd's migrations, recording which are applied in
/// `alertd.schema_migrations`.
///
/// Each migration runs in a transaction of its own together with its record, under an advisory
/// lock, so two alertd instances starting at once apply it once, and a migration that fails
/// leaves nothing behind.
public struct Migrator: Sendable {
    public let connection: PostgresConnection
    public let migrations: [Migration]

    public init(connection: PostgresConnection, migrations: [Migration]) {
        self.connection = connection
        self.migrations = migrations
    }

    /// What the platform must already have before the migrations apply.
    static let requiredTables = [
        "tenants", "tenant_users", "integration_configs", "integration_sync_configs", "integration_sync_history",
    ]

    static let lockKey = "alertd.migrations"

    /// Which migrations are applied, one entry per migration file, plus any applied migration whose
    /// file is gone.
    public func status() async throws -> [MigrationStatus] {
        let records = try await appliedRecords()
        var statuses = migrations.map { migration in
            let record = records.first { $0.version == migration.version }
            return MigrationStatus(
                id: migration.id,
                applied: record.map { .init(at: $0.appliedAt, by: $0.appliedBy, modifiedSince: $0.checksum != Self.checksum(migration.sql)) }
            )
        }
        for record in records where !migrations.contains(where: { $0.version == record.version }) {
            statuses.append(MigrationStatus(id: "\(record.version)_\(record.name)", applied: .init(at: record.appliedAt, by: record.appliedBy, modifiedSince: false), fileMissing: true))
        }
        return statuses
    }

    /// Applies every migration not yet applied, oldest first, reporting each step.
    @discardableResult
    public func migrate(report: @Sendable (String) -> Void) async throws -> [Migration] {
        let missing = try await missingPlatformPieces()
        guard missing.isEmpty else {
            throw AlertdError(
                .platformMissing,
                "The database lacks what alertd's migrations build on: \(missing.joined(separator: ", ")).",
                hint: "Run alertd db migrate against the ETL platform's database. For a local trial, run alertd db init-platform first on an empty database."
            )
        }
        let applied = Set(try await appliedRecords().map(\.version))
        let pending = migrations.filter { !applied.contains($0.version) }
        if pending.isEmpty {
            report("Nothing to apply: all \(migrations.count) migrations are applied.")
            return []
        }
        var done: [Migration] = []
        for migration in pending {
            report("Applying \(migration.id) ...")
            let started = ContinuousClock.now
            let didApply: Bool
            do {
                didApply = try await connection.withTransaction { session in
                    try Self.lock(session)
                    try Self.ensureBookkeeping(session)
                    // Another instance may have applied it while this one waited for the lock.
                    let already = try session.query("SELECT 1 FROM alertd.schema_migrations WHERE version = $1", [migration.version])
                    guard already.isEmpty else { return false }
                    try session.execute(migration.sql)
                    _ = session.takeNotices()
                    let elapsed = ContinuousClock.now - started
                    try session.query(
                        """
                        INSERT INTO alertd.schema_migrations (version, name, checksum, duration_ms)
                        VALUES ($1, $2, $3, $4)
                        """,
                        [migration.version, migration.name, Self.checksum(migration.sql), Int(elapsed.seconds * 1000)]
                    )
                    return true
                }
            } catch let error as PostgresError {
                throw AlertdError(
                    .migrationFailed,
                    "\(migration.id) failed and was rolled back, with nothing of it left applied: \(error)"
                )
            }
            let elapsed = ContinuousClock.now - started
            if didApply {
                report("Applied \(migration.id) in \(Self.milliseconds(elapsed)) ms.")
                done.append(migration)
            } else {
                report("Skipped \(migration.id): another alertd applied it meanwhile.")
            }
        }
        return done
    }

    /// Undoes the newest applied migration, or all of them, newest first.
    ///
    /// Refuses, changing nothing, when a table it would drop holds rows, unless `force` is set.
    @discardableResult
    public func rollback(all: Bool, force: Bool, report: @Sendable (String) -> Void) async throws -> [String] {
        let records = try await appliedRecords().sorted { $0.version > $1.version }
        guard let newest = records.first else {
            throw AlertdError(.nothingToRollBack, "Nothing to roll back: no alertd migration is recorded as applied in this database.")
        }
        let targets = all ? records : [newest]
        var plan: [Migration] = []
        for record in targets {
            guard let migration = migrations.first(where: { $0.version == record.version }), migration.rollbackSQL != nil else {
                throw AlertdError(
                    .rollbackRefused,
                    "Cannot roll back \(record.version)_\(record.name): its rollback file is missing. Nothing was changed."
                )
            }
            plan.append(migration)
        }

        let occupied = try await occupiedTables(droppedBy: plan)
        let filled = try await filledColumns(droppedBy: plan, besides: Set(occupied.map(\.table)))
        if !(occupied.isEmpty && filled.isEmpty) && !force {
            let list = occupied.map { "\($0.table) holds \($0.rows) row\($0.rows == 1 ? "" : "s")" }
                + filled.map { "\($0.table).\($0.column) holds values in \($0.rows) row\($0.rows == 1 ? "" : "s")" }
            throw AlertdError(
                .rollbackRefused,
                "Refusing to roll back: it would drop data (\(list.joined(separator: "; "))). The alert history is an audit record, and the platform's columns hold its integrations' settings. Nothing was changed.",
                hint: "Export the rows first (for example with \\copy in psql), then run again with --force to drop them."
            )
        }
        for table in occupied {
            report("Dropping \(table.table) with its \(table.rows) rows (--force).")
        }
        for column in filled {
            report("Dropping \(column.table).\(column.column) with its values in \(column.rows) rows (--force).")
        }

        var rolledBack: [String] = []
        for migration in plan {
            report("Rolling back \(migration.id) ...")
            let started = ContinuousClock.now
            let rollbackSQL = migration.rollbackSQL ?? ""
            do {
                try await connection.withTransaction { session in
                    try Self.lock(session)
                    try session.execute(rollbackSQL)
                    _ = session.takeNotices()
                    try session.query("DELETE FROM alertd.schema_migrations WHERE version = $1", [migration.version])
                }
            } catch let error as PostgresError {
                throw AlertdError(.migrationFailed, "Rolling back \(migration.id) failed and changed nothing: \(error)")
            }
            report("Rolled back \(migration.id) in \(Self.milliseconds(ContinuousClock.now - started)) ms.")
            rolledBack.append(migration.id)
        }

        // With nothing left applied, the bookkeeping goes too, so the schema is as before alertd.
        try await connection.withTransaction { session in
            try Self.lock(session)
            let remaining = try session.query("SELECT count(*) AS n FROM alertd.schema_migrations")
            if try remaining[0].decode("n", as: Int.self) == 0 {
                try session.execute("DROP TABLE alertd.schema_migrations")
                let others = try session.query(
                    "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'alertd'"
                )
                if try others[0].decode("n", as: Int.self) == 0 {
                    try session.execute("DROP SCHEMA alertd")
                }
            }
        }
        return rolledBack
    }

    // MARK: - Pieces

    struct AppliedRecord: Sendable {
        let version: String
        let name: String
        let checksum: String
        let appliedAt: Date
        let appliedBy: String
    }

    func appliedRecords() async throws -> [AppliedRecord] {
        try await connection.withSession { session in
            let exists = try session.query("SELECT to_regclass('alertd.schema_migrations') IS NOT NULL AS present")
            guard try exists[0].decode("present", as: Bool.self) else { return [] }
            return try session.query(
                "SELECT version, name, checksum, applied_at, applied_by FROM alertd.schema_migrations ORDER BY version"
            ).map { row in
                AppliedRecord(
                    version: try row.decode("version"),
                    name: try row.decode("name"),
                    checksum: try row.decode("checksum"),
                    appliedAt: try row.decode("applied_at"),
                    appliedBy: try row.decode("applied_by")
                )
            }
        }
    }

    /// The platform's tables, role and function that the migrations need and the database lacks.
    public func missingPlatformPieces() async throws -> [String] {
        try await connection.withSession { session in
            var missing: [String] = []
            for table in Self.requiredTables {
                let rows = try session.query("SELECT to_regclass($1) IS NOT NULL AS present", ["public.\(table)"])
                if try !rows[0].decode("present", as: Bool.self) { missing.append("table \(table)") }
            }
            let role = try session.query("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') AS present")
            if try !role[0].decode("present", as: Bool.self) { missing.append("role authenticated") }
            let uid = try session.query("SELECT to_regprocedure('auth.uid()') IS NOT NULL AS present")
            if try !uid[0].decode("present", as: Bool.self) { missing.append("function auth.uid()") }
            return missing
        }
    }

    struct OccupiedTable: Sendable {
        let table: String
        let rows: Int
    }

    func occupiedTables(droppedBy plan: [Migration]) async throws -> [OccupiedTable] {
        let tables = plan.flatMap(\.tablesDroppedByRollback)
        return try await connection.withSession { session in
            var occupied: [OccupiedTable] = []
            for table in tables {
                let present = try session.query("SELECT to_regclass($1) IS NOT NULL AS present", ["public.\(table)"])
                guard try present[0].decode("present", as: Bool.self) else { continue }
                let count = try session.query("SELECT count(*) AS n FROM public.\(session.quoteIdentifier(table))")
                let rows = try count[0].decode("n", as: Int.self)
                if rows > 0 { occupied.append(OccupiedTable(table: table, rows: rows)) }
            }
            return occupied
        }
    }

    struct FilledColumn: Sendable {
        let table: String
        let column: String
        let rows: Int
    }

    /// The platform's columns the plan drops that hold values (not null, and other than a
    /// constant default), outside the tables it drops whole.
    func filledColumns(droppedBy plan: [Migration], besides droppedTables: Set<String>) async throws -> [FilledColumn] {
        var seen = Set<String>()
        let columns = plan.flatMap(\.platformColumnsDroppedByRollback).filter { column in
            !droppedTables.contains(column.table) && seen.insert("\(column.table).\(column.column)").inserted
        }
        return try await connection.withSession { session in
            var filled: [FilledColumn] = []
            for (table, column) in columns {
                let attribute = try session.query(
                    """
                    SELECT pg_get_expr(d.adbin, d.adrelid) AS default_value
                      FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                     WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped
                    """,
                    ["public.\(table)", column]
                )
                guard let row = attribute.first else { continue }
                let quoted = session.quoteIdentifier(column)
                var condition = "\(quoted) IS NOT NULL"
                // A constant default (0, false, 'full'::varchar) is no data of the platform's.
                if let defaultValue = try row.decode("default_value", as: String?.self), !defaultValue.contains("(") {
                    condition += " AND \(quoted) IS DISTINCT FROM \(defaultValue)"
                }
                let count = try session.query("SELECT count(*) AS n FROM public.\(session.quoteIdentifier(table)) WHERE \(condition)")
                let rows = try count[0].decode("n", as: Int.self)
                if rows > 0 { filled.append(FilledColumn(table: table, column: column, rows: rows)) }
            }
            return filled
        }
    }

    static func lock(_ session: PostgresSession) throws {
        try session.query("SELECT pg_advisory_xact_lock(hashtext($1))", [lockKey])
    }

    static func ensureBookkeeping(_ session: PostgresSession) throws {
        try session.execute(
            """
            CREATE SCHEMA IF NOT EXISTS alertd;
            CREATE TABLE IF NOT EXISTS alertd.schema_migrations (
              version text PRIMARY KEY,
              name text NOT NULL,
              checksum text NOT NULL,
              applied_at timestamptz NOT NULL DEFAULT now(),
              applied_by text NOT NULL DEFAULT current_user,
              duration_ms integer
            );
            COMMENT ON TABLE alertd.schema_migrations IS 'alertd migrations applied to this database (alertd db status).';
            """
        )
        _ = session.takeNotices()
    }

    /// A fingerprint of a migration's text, to tell when a file changed after it was applied.
    static func checksum(_ text: String) -> String {
        // FNV-1a, 64-bit: enough to notice an edit; not a security measure.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int((duration.seconds * 1000).rounded())
    }
}

/// Whether one migration is applied.
public struct MigrationStatus: Sendable, Equatable {
    public struct Applied: Sendable, Equatable {
        public let at: Date
        public let by: String
        /// The file changed after it was applied.
        public let modifiedSince: Bool
    }

    public let id: String
    public let applied: Applied?
    /// Recorded as applied, but no file of that name is among the migrations.
    public var fileMissing = false

    public var isApplied: Bool { applied != nil }
}
