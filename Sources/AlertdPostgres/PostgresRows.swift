import AlertdSupport
/// The rows a statement returned, read into memory, every value in PostgreSQL's text format.
public struct PostgresRows: Sendable, RandomAccessCollection {
    /// The columns' names and where each is, made once for all the rows: a claim's row is read by
    /// about sixty names, which a search of the names for each would compare by the thousand.
    private let index: ColumnIndex
    let values: [[String?]]
    /// How many rows the statement inserted, updated or deleted (0 when it did neither).
    public let affectedRows: Int

    public var columns: [String] { index.names }

    init(columns: [String], values: [[String?]], affectedRows: Int) {
        self.index = ColumnIndex(columns)
        self.values = values
        self.affectedRows = affectedRows
    }

    public var startIndex: Int { values.startIndex }
    public var endIndex: Int { values.endIndex }

    public subscript(position: Int) -> PostgresRow {
        PostgresRow(index: index, values: values[position])
    }
}

/// A result's column names and the position of each (the first, if a name repeats).
final class ColumnIndex: Sendable {
    let names: [String]
    let positions: [String: Int]

    init(_ names: [String]) {
        self.names = names
        var positions: [String: Int] = [:]
        positions.reserveCapacity(names.count)
        for (position, name) in names.enumerated() where positions[name] == nil {
            positions[name] = position
        }
        self.positions = positions
    }
}

/// One row of a result.
public struct PostgresRow: Sendable {
    private let index: ColumnIndex
    let values: [String?]

    init(index: ColumnIndex, values: [String?]) {
        self.index = index
        self.values = values
    }

    public var columns: [String] { index.names }

    /// The value of `column` as `type`; throws if the column is missing, NULL where `type` is not
    /// optional, or not readable as `type`.
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let position = index.positions[column] else {
            throw PostgresError(.decodingFailed, "The result has no column \(column); it has \(columns.joined(separator: ", ")).")
        }
        return try T.decode(postgresText: values[position], column: column)
    }

    /// The raw text of a column, nil for NULL.
    public subscript(column: String) -> String? {
        index.positions[column].flatMap { values[$0] }
    }
}
