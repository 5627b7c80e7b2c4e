@testable import AlertdPostgres
import AlertdSupport
import CLibPQ
import AlertdTestSupport
import Foundation
import Testing

/// A session that is not quite alertd's own: statements prepared elsewhere, a backend that stops
/// answering. (PgBouncer in transaction mode, the real thing, is driven by the fault suite's
/// `poolers` scenario.)
@Suite struct PostgresSessionOwnershipTests {
    @Test func aDirectConnectionIsItsOwnSession() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            let started = ContinuousClock.now
            let verdict = await PostgresSessionCheck.check(database.connectionString)
            #expect(verdict == .own)
            // The first notification arrived: the check never waited out its timeout (5 s).
            #expect(ContinuousClock.now - started < PostgresSessionCheck.defaultTimeout)
        }
    }

    /// The check's second half on a connection that listens on `channel` (or, with `listen`
    /// false, does not), its backend frozen with SIGSTOP if `freeze`.
    static func confirm(_ database: TestDatabase, listen: Bool, freeze: Bool) async throws -> PostgresSessionVerdict? {
        let worker = BlockingWorker(name: "alertd-test-check")
        defer { worker.shutdown() }
        let connectionString = database.connectionString
        return try await worker.run { () -> PostgresSessionVerdict? in
            let wait = PostgresConnector.slicedWait { false }
            guard case .connected(let listening) = PostgresConnector.connect(connectionString, wait: wait) else { return nil }
            defer { PQfinish(listening) }
            let channel = "alertd_session_check_test"
            if listen {
                guard case .done = LibPQCommand.run("LISTEN \(channel)", on: listening, timeout: .seconds(5), wait: wait, pass: { _ in }) else { return nil }
            }
            let backend = PQbackendPID(listening)
            if freeze { kill(backend, SIGSTOP) }
            defer { if freeze { kill(backend, SIGCONT) } }
            return SessionCheck(connectionString: connectionString, timeout: .seconds(1)).confirm(channel: channel, on: listening, wait: wait, pass: { _ in })
        }
    }

    /// A listening backend frozen after its LISTEN (or cut off without a close) hears nothing:
    /// a broken connection to make again, not a pooler to refuse.
    @Test func aListenerThatStopsAnsweringIsABrokenConnectionNotAPooler() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            let verdict = try await Self.confirm(database, listen: true, freeze: true)
            guard case .unknown(let reason) = verdict else {
                Issue.record("a frozen listener gives no verdict, not \(String(describing: verdict))")
                return
            }
            #expect(reason.contains("the listening connection stopped answering"), "\(reason)")
        }
    }

    /// Notifications that never arrive on a connection that answers: the session is not its own.
    @Test func notificationsLostOnAConnectionThatAnswersMeanAPooler() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            let verdict = try await Self.confirm(database, listen: false, freeze: false)
            guard case .pooled(let evidence) = verdict else {
                Issue.record("lost notifications are a pooler's, not \(String(describing: verdict))")
                return
            }
            #expect(evidence.contains("while the listening connection answered queries"), "\(evidence)")
        }
    }

    @Test func aServerThatRefusesGivesNoVerdict() async throws {
        let nowhere = try PostgresConnectionString("host=127.0.0.1 port=1 dbname=postgres user=alertd connect_timeout=2")
        let verdict = await PostgresSessionCheck.check(nowhere)
        guard case .unknown(let reason) = verdict else {
            Issue.record("expected no verdict, got \(verdict)")
            return
        }
        #expect(reason.contains("cannot connect"))
    }

    @Test func aMissingPreparedStatementIsPreparedNoMore() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            try await database.withConnection { connection in
                let first = try await connection.preparedQuery("SELECT $1::int + 1 AS n", [1])
                #expect(try first[0].decode("n", as: Int.self) == 2)
                // What a pooler in transaction mode does: the next statement runs on a server
                // connection that never saw alertd_1.
                try await connection.execute("DEALLOCATE ALL")
                let second = try await connection.preparedQuery("SELECT $1::int + 1 AS n", [2])
                #expect(try second[0].decode("n", as: Int.self) == 3)
                let third = try await connection.preparedQuery("SELECT $1::text || 'x' AS s", ["a"])
                #expect(try third[0].decode("s", as: String.self) == "ax")
                let named: Int = try await connection.query("SELECT count(*)::int AS n FROM pg_prepared_statements")[0].decode("n")
                #expect(named == 0, "every statement after the mix-up is sent unnamed")
            }
        }
    }

    @Test func aPreparedStatementThatExistsAlreadyIsNoOutage() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            try await database.withConnection { connection in
                // Another client's alertd_1 on the same server connection, as behind a pooler.
                try await connection.execute("PREPARE alertd_1 (int, int, int) AS SELECT $1 + $2 + $3")
                let rows = try await connection.preparedQuery("SELECT $1::int * 2 AS n", [21])
                #expect(try rows[0].decode("n", as: Int.self) == 42)
            }
        }
    }

    @Test func aMixUpInsideATransactionFailsItAsAStatementNotAnOutage() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            try await database.withConnection { connection in
                _ = try await connection.preparedQuery("SELECT $1::int AS n", [1])
                try await connection.execute("DEALLOCATE ALL")
                let error = await #expect(throws: PostgresError.self) {
                    try await connection.withTransaction { session in
                        try session.preparedQuery("SELECT $1::int AS n", [1])
                    }
                }
                #expect(error?.code == .queryFailed)
                #expect(error?.sqlState == "26000")
                // Run again, it goes through unnamed.
                let again = try await connection.withTransaction { session in
                    try session.preparedQuery("SELECT $1::int AS n", [5])[0].decode("n", as: Int.self)
                }
                #expect(again == 5)
            }
        }
    }

    @Test func aCancelledCallOnABackendThatNeverAnswersIsAbandoned() async throws {
        try await TestPostgres.withDatabase(.empty) { database in
            let connection = try await database.connect()
            let backend = connection.backendPID
            #expect(kill(backend, SIGSTOP) == 0, "the tests run as root or as the cluster's owner")
            defer { kill(backend, SIGCONT) }
            let started = ContinuousClock.now
            let call = Task { try await connection.query("SELECT 1") }
            try await Task.sleep(for: .milliseconds(300))
            call.cancel()
            let error = await #expect(throws: PostgresError.self) { try await call.value }
            let took = ContinuousClock.now - started
            #expect(error?.code == .connectionLost)
            #expect(error?.message.contains("did not answer") == true)
            // 0.3 s before the cancel, 2 s of waiting for its answer, then given up: a few
            // seconds, more on a loaded machine; without the abandon it would wait for good.
            #expect(took < .seconds(20), "took \(took)")
            kill(backend, SIGCONT)
            // The next call connects anew.
            let rows = try await connection.query("SELECT pg_backend_pid() AS pid")
            #expect(try rows[0].decode("pid", as: Int32.self) != backend)
            await connection.close()
        }
    }
}
