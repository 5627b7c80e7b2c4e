import AlertdSupport
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

@Suite struct PostgresConnectionTests {
    @Test func parameterisedQueriesReturnTypedValues() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            try await database.withConnection { connection in
                let id = UUID()
                let when = Date(timeIntervalSince1970: 1_763_807_400.5)
                let rows = try await connection.query(
                    "SELECT $1::int AS n, $2::text AS s, $3::uuid AS id, $4::timestamptz AS at, $5::text[] AS list, NULL::text AS nothing, $6::bool AS yes",
                    [42, "O'Brien \"quoted\" ünïcode", id, when, ["a", "b c", "d\"e"], true]
                )
                #expect(rows.count == 1)
                let row = rows[0]
                #expect(try row.decode("n", as: Int.self) == 42)
                #expect(try row.decode("s", as: String.self) == "O'Brien \"quoted\" ünïcode")
                #expect(try row.decode("id", as: UUID.self) == id)
                #expect(try row.decode("at", as: Date.self) == when)
                #expect(try row.decode("list", as: [String].self) == ["a", "b c", "d\"e"])
                #expect(try row.decode("nothing", as: String?.self) == nil)
                #expect(try row.decode("yes", as: Bool.self))
                #expect(throws: PostgresError.self) { try row.decode("nothing", as: String.self) }
                #expect(throws: PostgresError.self) { try row.decode("missing", as: String.self) }
            }
        }
    }

    @Test func aNullParameterIsSQLNull() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            try await database.withConnection { connection in
                let rows = try await connection.query("SELECT $1::text IS NULL AS isnull", [nil])
                #expect(try rows[0].decode("isnull", as: Bool.self))
                let missing: String? = nil
                let optional = try await connection.query("SELECT $1::text IS NULL AS isnull", [missing])
                #expect(try optional[0].decode("isnull", as: Bool.self))
                let withNulls: [Int?] = [1, nil, 3]
                let array = try await connection.query("SELECT $1::int[] AS a, ($1::int[])[2] IS NULL AS second_null", [withNulls])
                #expect(try array[0].decode("a", as: [Int?].self) == [1, nil, 3])
                #expect(try array[0].decode("second_null", as: Bool.self))
            }
        }
    }

    @Test func serverErrorsCarryTheirSQLState() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            try await database.withConnection { connection in
                try await connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
                try await connection.query("INSERT INTO t VALUES (1)")
                let error = await #expect(throws: PostgresError.self) {
                    try await connection.query("INSERT INTO t VALUES ($1)", [1])
                }
                if let error {
                    #expect(error.code == .queryFailed)
                    #expect(error.sqlState == "23505")
                    #expect(error.isConstraintViolation)
                    #expect(error.description.contains("duplicate key"))
                }
                // The connection is still usable after an error.
                #expect(try await connection.query("SELECT count(*) AS n FROM t")[0].decode("n", as: Int.self) == 1)
            }
        }
    }

    @Test func transactionsCommitOrRollBackWhole() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            try await database.withConnection { connection in
                try await connection.execute("CREATE TABLE t (id int PRIMARY KEY)")
                try await connection.withTransaction { session in
                    try session.query("INSERT INTO t VALUES (1)")
                    try session.query("INSERT INTO t VALUES (2)")
                }
                await #expect(throws: PostgresError.self) {
                    try await connection.withTransaction { session in
                        try session.query("INSERT INTO t VALUES (3)")
                        try session.query("INSERT INTO t VALUES (1)")
                    }
                }
                let ids = try await connection.query("SELECT id FROM t ORDER BY id").map { try $0.decode("id", as: Int.self) }
                #expect(ids == [1, 2])
            }
        }
    }

    @Test func blockingCallsRunOnTheConnectionsOwnThread() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            try await database.withConnection { connection in
                // The kernel's name of the thread that runs the calls: not one of the pool's.
                let name = try await connection.withSession { _ in
                    (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                }
                #expect(name == "alertd-postgres")
            }
        }
    }

    @Test func aLostConnectionIsReplacedOnTheNextCall() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            try await database.withConnection { connection in
                let firstPID = try await connection.query("SELECT pg_backend_pid() AS pid")[0].decode("pid", as: Int32.self)
                try await database.withConnection { killer in
                    try await killer.query("SELECT pg_terminate_backend($1)", [firstPID])
                }
                // The call that meets the dead connection fails and says so ...
                do {
                    try await connection.query("SELECT 1")
                } catch let error as PostgresError {
                    #expect(error.code == .connectionLost)
                }
                // ... and the next one reconnects.
                let secondPID = try await connection.query("SELECT pg_backend_pid() AS pid")[0].decode("pid", as: Int32.self)
                #expect(secondPID != firstPID)
            }
        }
    }

    @Test func sessionSettingsAreKeptAcrossAReconnect() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                try await connection.keepSessionSettings("SET jit = off; SET enable_sort = off")
                func settings() async throws -> [String] {
                    let row = try await connection.query("SELECT current_setting('jit') AS jit, current_setting('enable_sort') AS sort, current_setting('TimeZone') AS zone")[0]
                    return [try row.decode("jit", as: String.self), try row.decode("sort", as: String.self), try row.decode("zone", as: String.self)]
                }
                #expect(try await settings() == ["off", "off", "UTC"])
                let firstPID = try await connection.query("SELECT pg_backend_pid() AS pid")[0].decode("pid", as: Int32.self)
                try await database.withConnection { killer in
                    try await killer.query("SELECT pg_terminate_backend($1)", [firstPID])
                }
                _ = try? await connection.query("SELECT 1")
                #expect(try await settings() == ["off", "off", "UTC"])
                #expect(try await connection.query("SELECT pg_backend_pid() AS pid")[0].decode("pid", as: Int32.self) != firstPID)
            }
        }
    }

    @Test func cancellingTheTaskCancelsTheStatement() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            try await database.withConnection { connection in
                let started = ContinuousClock.now
                let sleeper = Task { try await connection.query("SELECT pg_sleep(30)") }
                try await Task.sleep(for: .milliseconds(300))
                sleeper.cancel()
                let error = await #expect(throws: PostgresError.self) {
                    try await sleeper.value
                }
                if let error {
                    #expect(error.code == .cancelled)
                }
                #expect(ContinuousClock.now - started < .seconds(20))
                #expect(try await connection.query("SELECT 7 AS n")[0].decode("n", as: Int.self) == 7)
            }
        }
    }

    @Test func cancellingBeforeTheStatementReachesTheServerStillCancelsIt() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            try await database.withConnection { connection in
                for _ in 0..<5 {
                    let started = ContinuousClock.now
                    let sleeper = Task { try await connection.query("SELECT pg_sleep(30)") }
                    sleeper.cancel()
                    do {
                        _ = try await sleeper.value
                        Issue.record("pg_sleep(30) finished despite the cancellation")
                    } catch let error as PostgresError {
                        #expect(error.code == .cancelled)
                    } catch is CancellationError {
                        // Cancelled before it was queued: nothing was sent at all.
                    }
                    #expect(ContinuousClock.now - started < .seconds(20))
                }
                #expect(try await connection.query("SELECT 7 AS n")[0].decode("n", as: Int.self) == 7)
            }
        }
    }

    @Test func aWrongPasswordIsReportedWithoutIt() async throws {
        let server = try TestPostgres.serverConnectionString()
        let wrong = try PostgresConnectionString(
            "host=\(server.host ?? "127.0.0.1") port=\(server.port ?? "5432") user=postgres dbname=postgres password=Wr0ngPassw0rd!"
        )
        let error = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect(wrong, logger: TestPostgres.logger)
        }
        if let error {
            #expect(error.code == .connectionFailed)
            #expect(error.description.contains("password authentication failed"))
            #expect(!error.description.contains("Wr0ngPassw0rd"))
        }
    }

    @Test func anUnreachableServerFailsClearly() async throws {
        let nowhere = try PostgresConnectionString("postgresql://u:SecretPw9@127.0.0.1:1/db?connect_timeout=2")
        let error = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect(nowhere, logger: TestPostgres.logger)
        }
        if let error {
            #expect(error.code == .connectionFailed)
            #expect(error.description.contains("127.0.0.1"))
            #expect(!error.description.contains("SecretPw9"))
        }
    }

    @Test func connectingWithRetriesGivesUpAfterItsAttempts() async throws {
        let nowhere = try PostgresConnectionString("postgresql://u@127.0.0.1:1/db?connect_timeout=2")
        let backoff = Backoff(initial: .milliseconds(10), maximum: .milliseconds(20))
        await #expect(throws: PostgresError.self) {
            _ = try await PostgresConnection.connect(nowhere, retrying: backoff, attempts: 3, logger: TestPostgres.logger)
        }
    }

    @Test func callsAfterCloseFail() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            let connection = try await database.connect()
            await connection.close()
            await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
        }
    }
}
