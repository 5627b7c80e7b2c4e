import Foundation

/// One migration: its SQL, and the SQL that undoes it.
public struct Migration: Sendable, Equatable {
    /// The date-like prefix of the file name, which orders migrations: `20251122`.
    public let version: String
    /// The rest of the file name: `add_retry_and_alerts`.
    public let name: String
    public let sql: String
    public let rollbackSQL: String?

    public init(version: String, name: String, sql: String, rollbackSQL: String?) {
        self.version = version
        self.name = name
        self.sql = sql
        self.rollbackSQL = rollbackSQL
    }

    /// `20251122_add_retry_and_alerts`, the file name without `.sql`.
    public var id: String { "\(version)_\(name)" }

    /// Tables that hold settings or a cache, not records: a rollback drops them with their rows
    /// unasked.
    static let settingsTables: Set<String> = ["alertd_settings", "alertd_endpoint_watch"]

    /// The tables its rollback drops that may hold records, read from its `DROP TABLE`
    /// statements.
    public var tablesDroppedByRollback: [String] {
        guard let rollbackSQL else { return [] }
        return rollbackSQL
            .split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.hasPrefix("--") }
            .compactMap { line -> String? in
                let words = line.split(whereSeparator: { $0 == " " || $0 == ";" }).map(String.init)
                guard words.count >= 3, words[0].uppercased() == "DROP", words[1].uppercased() == "TABLE" else { return nil }
                var rest = words.dropFirst(2)
                if rest.first?.uppercased() == "IF", rest.dropFirst().first?.uppercased() == "EXISTS" {
                    rest = rest.dropFirst(2)
                }
                return rest.first.flatMap { Self.settingsTables.contains($0) ? nil : $0 }
            }
    }

    /// The platform's own tables: a column its rollback drops from one of them may hold the
    /// platform's data (an integration's alert addresses, say), not alertd's bookkeeping.
    static let platformTables: Set<String> = [
        "tenants", "tenant_users", "integration_configs", "integration_sync_configs", "integration_sync_history", "integration_alert_history",
    ]

    /// The columns its rollback drops from the platform's tables, read from its
    /// `ALTER TABLE ... DROP COLUMN` statements (one line each, or one per line of a statement).
    public var platformColumnsDroppedByRollback: [(table: String, column: String)] {
        guard let rollbackSQL else { return [] }
        var columns: [(table: String, column: String)] = []
        var table: String?
        for line in rollbackSQL.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) where !line.hasPrefix("--") {
            var words = line.split(whereSeparator: { $0 == " " || $0 == "," || $0 == ";" }).map(String.init)[...]
            if words.count >= 3, words[words.startIndex].uppercased() == "ALTER", words[words.startIndex + 1].uppercased() == "TABLE" {
                words = words.dropFirst(2)
                while let first = words.first, ["IF", "EXISTS", "ONLY"].contains(first.uppercased()) { words = words.dropFirst() }
                table = words.first
                words = words.dropFirst()
            }
            if let table, words.count >= 3, words[words.startIndex].uppercased() == "DROP", words[words.startIndex + 1].uppercased() == "COLUMN" {
                words = words.dropFirst(2)
                while let first = words.first, ["IF", "EXISTS"].contains(first.uppercased()) { words = words.dropFirst() }
                if let column = words.first, Self.platformTables.contains(table) { columns.append((table, column)) }
            }
            if line.hasSuffix(";") { table = nil }
        }
        return columns
    }

    /// The migrations in `directory`, oldest first, each with its rollback when there is one.
    public static func load(from directory: SQLDirectory) throws -> [Migration] {
        let files: [URL]
        do {
            files = try FileManager.default.contentsOfDirectory(at: directory.migrationsURL, includingPropertiesForKeys: nil)
        } catch {
            throw AlertdError(.sqlFilesNotFound, "Cannot list \(directory.migrationsURL.path): \(error.localizedDescription)")
        }
        return try files
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
            .map { file in
                let stem = file.deletingPathExtension().lastPathComponent
                guard let separator = stem.firstIndex(of: "_"),
                      stem[..<separator].allSatisfy(\.isNumber), separator != stem.startIndex
                else {
                    throw AlertdError(
                        .sqlFilesNotFound,
                        "\(file.path) is not named like a migration (<digits>_<name>.sql)."
                    )
                }
                let rollbackFile = directory.rollbacksURL.appending(path: "\(stem).rollback.sql")
                return Migration(
                    version: String(stem[..<separator]),
                    name: String(stem[stem.index(after: separator)...]),
                    sql: try String(contentsOf: file, encoding: .utf8),
                    rollbackSQL: try? String(contentsOf: rollbackFile, encoding: .utf8)
                )
            }
    }
}
