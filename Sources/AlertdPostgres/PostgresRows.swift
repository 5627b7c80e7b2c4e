import AlertdSupport
/// The rows a statement returned, read into memory, every value in PostgreSQL's text format.
public struct PostgresRows: Sendable, RandomAccessCollection {
    public let columns: [String]
    let values: [[String?]]
    /// How many rows the statement inserted, updated or deleted (0 when it did neither).
    public let affectedRows: Int

    init(columns: [String], values: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.values = values
        self.affectedRows = affectedRows
    }

    public var startIndex: Int { values.startIndex }
    public var endIndex: Int { values.endIndex }

    public subscript(position: Int) -> PostgresRow {
        PostgresRow(columns: columns, values: values[position])
    }
}

/// One row of a result.
public struct PostgresRow: Sendable {
    public let columns: [String]
    let values: [String?]

    /// The value of `column` as `type`; throws if the column is missing, NULL where `type` is not
    /// optional, or not readable as `type`.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let index = columns.firstIndex(of: column) else {
            throw PostgresError(.decodingFailed, "The result has no column \(column); it has \(columns.joined(separator: ", ")).")
        }
        return try T.decode(postgresText: values[index], column: column)
    }

    /// The raw text of a column, nil for NULL.
    public subscript(column: String) -> String? {
        columns.firstIndex(of: column).flatMap { values[$0] }
    }
}
