import AlertdKit
import ArgumentParser
import Foundation
import Logging

/// The options every `alertd db` command takes.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .customLong("database-url"),
        help: ArgumentHelp(
            "A libpq conninfo string or postgresql:// URI (default: $ALERTD_DATABASE_URL, or the file named by $ALERTD_DATABASE_URL_FILE).",
            valueName: "url"
        )
    )
    var databaseURL: String?

    @Option(
        name: .customLong("sql-dir"),
        help: ArgumentHelp("The folder holding alertd's SQL, deploy/ in a checkout (default: $ALERTD_SQL_DIR, or found next to alertd).", valueName: "path")
    )
    var sqlDirectory: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default: $ALERTD_LOG_LEVEL or \(AlertdLogHandler.defaultLevel)).")
    var logLevel: String?

    /// Resolves the options, connects, runs `body`, and turns any error into a message on
    /// standard error and exit status 1.
    func withTool(_ body: (DatabaseTool) async throws -> Void) async throws {
        do {
            let logger = try makeLogger()
            let connectionString = try DatabaseSettings.connectionString(flag: databaseURL)
            let directory = try SQLDirectory.locate(flag: sqlDirectory)
            let tool = try await DatabaseTool.connect(connectionString, sqlDirectory: directory, logger: logger) { line in
                print(line)
            }
            do {
                try await body(tool)
                await tool.close()
            } catch {
                await tool.close()
                throw error
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            FileHandle.standardError.write(Data("alertd: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    private func makeLogger() throws -> Logger {
        let environment = ProcessInfo.processInfo.environment
        return try AlertdLogHandler.logger(level: logLevel ?? environment["ALERTD_LOG_LEVEL"] ?? AlertdLogHandler.defaultLevel, format: environment["ALERTD_LOG_FORMAT"] ?? AlertdLogHandler.defaultFormat)
    }
}
