import Foundation

/// The folder that holds alertd's SQL: `supabase/migrations/*.sql`, their rollbacks in
/// `supabase/rollbacks/`, and the local platform fixture `dev/init-platform.sql`. In a checkout
/// it is `deploy/`; an installed alertd keeps it in `share/alertd/sql` beside `bin/`.
public struct SQLDirectory: Sendable {
    public static let variable = "ALERTD_SQL_DIR"

    public let url: URL

    public init(url: URL) {
        self.url = url
    }

    public var migrationsURL: URL { url.appending(path: "supabase/migrations") }
    public var rollbacksURL: URL { url.appending(path: "supabase/rollbacks") }
    public var platformFixtureURL: URL { url.appending(path: "dev/init-platform.sql") }

    /// The folder named by `flag` or `ALERTD_SQL_DIR`, else the first of: `../share/alertd/sql`
    /// from the executable, `./deploy`, and the `deploy/` of the checkout alertd was built from.
    public static func locate(
        flag: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        sourceFile: String = #filePath
    ) throws -> SQLDirectory {
        if let explicit = flag ?? environment[variable] {
            let directory = SQLDirectory(url: URL(filePath: explicit, directoryHint: .isDirectory))
            guard directory.isComplete else {
                throw AlertdError(
                    .sqlFilesNotFound,
                    "\(explicit) does not hold alertd's SQL (no supabase/migrations folder in it).",
                    hint: "Point --sql-dir or \(variable) at the deploy/ folder of alertd."
                )
            }
            return directory
        }
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            candidates.append(executable.deletingLastPathComponent().appending(path: "../share/alertd/sql").standardized)
        }
        candidates.append(URL(filePath: FileManager.default.currentDirectoryPath).appending(path: "deploy"))
        // Sources/AlertdKit/SQLDirectory.swift → the checkout's deploy/.
        candidates.append(URL(filePath: sourceFile).deletingLastPathComponent().appending(path: "../../deploy").standardized)
        for candidate in candidates {
            let directory = SQLDirectory(url: candidate)
            if directory.isComplete { return directory }
        }
        throw AlertdError(
            .sqlFilesNotFound,
            "Cannot find alertd's SQL files; looked in \(candidates.map(\.path).joined(separator: ", ")).",
            hint: "Pass --sql-dir or set \(variable) to the deploy/ folder of alertd."
        )
    }

    var isComplete: Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: migrationsURL.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
