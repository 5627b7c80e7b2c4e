import AlertdPostgres
import Foundation

/// Where the database is, read from `--database-url`, `ALERTD_DATABASE_URL` or the file named by
/// `ALERTD_DATABASE_URL_FILE`, in that order.
public enum DatabaseSettings {
    public static let variable = "ALERTD_DATABASE_URL"

    public static func connectionString(
        flag: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> PostgresConnectionString {
        let source: String
        let text: String
        if let flag {
            (source, text) = ("--database-url", flag)
        } else if let value = environment[variable] {
            (source, text) = (variable, value)
        } else if let path = environment[variable + "_FILE"] {
            source = "\(variable)_FILE (\(path))"
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw AlertdError(.configuration, "Cannot read the database URL from \(path): \(error.localizedDescription)")
            }
        } else {
            throw AlertdError(
                .configuration,
                "No database given.",
                hint: "Pass --database-url or set \(variable) (or \(variable)_FILE) to a libpq conninfo string or a postgresql:// URI."
            )
        }
        do {
            return try PostgresConnectionString(text)
        } catch {
            throw AlertdError(.configuration, "\(source): \(error.message)", hint: error.hint)
        }
    }
}
