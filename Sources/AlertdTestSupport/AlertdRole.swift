import AlertdPostgres
import Foundation

/// alertd's least-privilege login role, made with deploy/supabase/alertd-login.sql as an operator
/// would, so that tests run alertd as it runs in production: a member of alertd_dispatcher, no
/// superuser, no BYPASSRLS.
public enum AlertdRole {
    public static let name = "alertd"
    /// The tests' password for it: a cluster that only listens on loopback, for the tests' time.
    public static let testPassword = "alertd-role-test-password"

    /// Creates the login role on the cluster (or sets its password) with psql.
    public static func create(on server: PostgresConnectionString, password: String = testPassword) async throws {
        let script = TestPostgres.packageRoot.appending(path: "deploy/supabase/alertd-login.sql").path
        let result = try await TestProcess.run("/usr/bin/psql", [
            "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "-v", "user=\(name)", "-v", "password=\(password)",
            "--dbname", server.conninfoForChildProcesses, "--file", script,
        ])
        guard result.status == 0 else {
            throw TestSetupError("psql -f alertd-login.sql failed: \(result.standardError)")
        }
    }

    /// Once per test process: every test database's migration grants alertd_dispatcher its
    /// privileges, and this login role is a member of it. Made as `platform_owner` (CREATEROLE, no
    /// superuser), as an operator on Supabase makes it as `postgres`.
    static let ensured = OnceTask {
        try await TestPostgres.supabaseRoles.value()
        try await create(on: try TestPostgres.serverConnectionString().withUser(PlatformRole.owner.name, password: PlatformRole.owner.password))
    }
}

extension TestDatabase {
    /// This database's URL as alertd's least-privilege role, for `alertd run` and friends (the
    /// role exists once a `.migrated` database has been made).
    public var alertdURL: String {
        "host=\(connectionString.value(of: "host") ?? "127.0.0.1") port=\(connectionString.value(of: "port") ?? "5432") dbname=\(name) user=\(AlertdRole.name) password=\(AlertdRole.testPassword)"
    }
}

/// Runs an async job once, however many callers ask, and hands each the result.
final class OnceTask: @unchecked Sendable {
    // Invariant: `task` is read and written with `lock` held.
    private let lock = NSLock()
    private var task: Task<Void, any Error>?
    private let job: @Sendable () async throws -> Void

    init(_ job: @escaping @Sendable () async throws -> Void) {
        self.job = job
    }

    func value() async throws {
        let task = lock.withLock {
            if let task = self.task { return task }
            let task = Task { try await job() }
            self.task = task
            return task
        }
        try await task.value
    }
}
