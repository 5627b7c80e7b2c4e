import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

@Suite struct RetryFunctionTests {
    /// Seconds from now() to calculate_next_retry(...), in one transaction so now() holds still.
    static func delay(_ connection: PostgresConnection, _ arguments: String) async throws -> Double {
        try await connection.withTransaction { session in
            try session.query("SELECT extract(epoch FROM calculate_next_retry(\(arguments)) - now()::timestamp)::float8 AS s")[0].decode("s", as: Double.self)
        }
    }

    @Test func calculateNextRetryDoublesFromSixtySecondsUpToAnHour() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                var delays: [Double] = []
                for n in 0...7 { delays.append(try await Self.delay(connection, "\(n)")) }
                #expect(delays == [60, 120, 240, 480, 960, 1920, 3600, 3600])
                #expect(try await Self.delay(connection, "1000") == 3600)
                #expect(try await Self.delay(connection, "3, 10") == 80)
                #expect(try await Self.delay(connection, "-5") == 60)
                #expect(try await Self.delay(connection, "NULL, NULL") == 60)
                #expect(try await Self.delay(connection, "retry_count => 2, base_delay_seconds => 1") == 4)
            }
        }
    }

    @Test func calculateNextRetryIsStableNotImmutable() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let volatility = try await connection.query(
                    "SELECT provolatile FROM pg_proc WHERE oid = 'calculate_next_retry(integer,integer)'::regprocedure"
                )[0].decode("provolatile", as: String.self)
                #expect(volatility == "s")
            }
        }
    }

    struct RetryState: Equatable {
        let retryCount: Int
        let maxRetries: Int
        /// Seconds from the call's now() to retry_at; nil when none is scheduled.
        let dueIn: Double?
    }

    /// Calls schedule_sync_retry and reads the run back in the same transaction, where now()
    /// holds still, so the delay it scheduled is exact.
    static func schedule(_ connection: PostgresConnection, _ run: UUID, _ max: Int = 3) async throws -> (scheduled: Bool, state: RetryState, retryAt: String?) {
        try await connection.withTransaction { session in
            let scheduled: Bool = try session.query(
                "SELECT schedule_sync_retry(sync_id => $1, max_retry_attempts => $2) AS ok", [run, max]
            )[0].decode("ok")
            let row = try session.query(
                "SELECT retry_count, max_retries, extract(epoch FROM retry_at - now()::timestamp)::float8 AS due_in, retry_at::text AS retry_at FROM integration_sync_history WHERE id = $1",
                [run]
            )[0]
            let state = RetryState(retryCount: try row.decode("retry_count"), maxRetries: try row.decode("max_retries"), dueIn: try row.decode("due_in"))
            return (scheduled, state, try row.decode("retry_at"))
        }
    }

    /// Makes the scheduled retry of `run` due now, as time passing would.
    static func comeDue(_ connection: PostgresConnection, _ run: UUID) async throws {
        try await connection.query("UPDATE integration_sync_history SET retry_at = now()::timestamp - interval '1 second' WHERE id = $1", [run])
    }

    @Test func scheduleSyncRetryCountsRetriesOnTheSixtyOneTwentyTwoFortySchedule() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant())
                let run = try await rows.syncRun(integration: integration, status: "failed")

                let first = try await Self.schedule(connection, run)
                #expect(first.scheduled)
                #expect(first.state == RetryState(retryCount: 0, maxRetries: 3, dueIn: 60))
                // Asking again before it is due changes nothing.
                let repeated = try await Self.schedule(connection, run)
                #expect(repeated.scheduled)
                #expect(repeated.retryAt == first.retryAt)
                #expect(repeated.state.retryCount == 0)

                try await Self.comeDue(connection, run)
                let second = try await Self.schedule(connection, run)
                #expect(second.scheduled)
                #expect(second.state == RetryState(retryCount: 1, maxRetries: 3, dueIn: 120))

                try await Self.comeDue(connection, run)
                let third = try await Self.schedule(connection, run)
                #expect(third.scheduled)
                #expect(third.state == RetryState(retryCount: 2, maxRetries: 3, dueIn: 240))

                // The third retry has been used: the maximum is reached and the run leaves the queue.
                try await Self.comeDue(connection, run)
                let exhausted = try await Self.schedule(connection, run)
                #expect(exhausted.scheduled == false)
                #expect(exhausted.state == RetryState(retryCount: 3, maxRetries: 3, dueIn: nil))
                #expect(try await Self.schedule(connection, run).scheduled == false)
            }
        }
    }

    @Test func scheduleSyncRetryRefusesUnknownAndNonFailedRuns() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant())
                let unknown = try await connection.query("SELECT schedule_sync_retry($1) AS ok", [UUID()])
                #expect(try unknown[0].decode("ok", as: Bool.self) == false)
                for status in ["success", "running", "partial", "cancelled"] {
                    let run = try await rows.syncRun(integration: integration, status: status, endpoint: status)
                    let result = try await Self.schedule(connection, run)
                    #expect(result.scheduled == false, "\(status)")
                    #expect(result.state == RetryState(retryCount: 0, maxRetries: 3, dueIn: nil))
                }
                let failed = try await rows.syncRun(integration: integration, status: "failed", endpoint: "zero")
                let none = try await Self.schedule(connection, failed, 0)
                #expect(none.scheduled == false)
                #expect(none.state == RetryState(retryCount: 0, maxRetries: 0, dueIn: nil))
            }
        }
    }

    @Test func pendingSyncRetriesListsDueRetriesOldestFirst() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let tenant = try await rows.tenant()
                let integration = try await rows.integration(tenant: tenant, name: "ADP payroll")
                func run(_ endpoint: String, status: String = "failed", retryAt: String?, count: Int = 0, max: Int = 3) async throws -> UUID {
                    let id = try await rows.syncRun(integration: integration, status: status, endpoint: endpoint)
                    try await connection.query(
                        "UPDATE integration_sync_history SET retry_at = now()::timestamp + $2::interval, retry_count = $3, max_retries = $4, error_message = 'boom ' || $5 WHERE id = $1",
                        [id, retryAt, count, max, endpoint]
                    )
                    return id
                }
                let older = try await run("older", retryAt: "-10 minutes", count: 1)
                let newer = try await run("newer", retryAt: "-1 minute")
                _ = try await run("not yet due", retryAt: "5 minutes")
                _ = try await run("exhausted", retryAt: "-1 minute", count: 3)
                _ = try await run("never scheduled", retryAt: nil)
                _ = try await run("succeeded", status: "success", retryAt: "-1 minute")
                let started = try await run("retry already started", retryAt: "-2 minutes")
                try await connection.query(
                    "INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status, is_retry, original_sync_id) VALUES ($1, 'retry already started', now(), 'running', true, $2)",
                    [integration, started]
                )

                let listed = try await connection.query("SELECT * FROM pending_sync_retries")
                #expect(listed.columns == ["id", "integration_config_id", "endpoint_name", "retry_count", "max_retries", "retry_at", "error_message", "integration_name", "tenant_id"])
                #expect(try listed.map { try $0.decode("id", as: UUID.self) } == [older, newer])
                #expect(try listed[0].decode("integration_name", as: String.self) == "ADP payroll")
                #expect(try listed[0].decode("tenant_id", as: UUID.self) == tenant)
                #expect(try listed[0].decode("error_message", as: String.self) == "boom older")
                #expect(try listed[0].decode("retry_count", as: Int.self) == 1)
            }
        }
    }

    @Test func pendingSyncRetriesShowsATenantOnlyItsOwnRuns() async throws {
        try await TestPostgres.withDatabase { database in
            let (user, mine) = try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let user = UUID()
                let tenantA = try await rows.tenant("A")
                let tenantB = try await rows.tenant("B")
                try await rows.member(user, of: tenantA)
                var ids: [UUID] = []
                for tenant in [tenantA, tenantB] {
                    let run = try await rows.syncRun(integration: try await rows.integration(tenant: tenant), status: "failed")
                    try await connection.query("UPDATE integration_sync_history SET retry_at = now()::timestamp - interval '1 minute' WHERE id = $1", [run])
                    ids.append(run)
                }
                return (user, ids[0])
            }
            try await database.withConnection { connection in
                try await connection.actAsAuthenticatedUser(user)
                let listed = try await connection.query("SELECT id FROM pending_sync_retries").map { try $0.decode("id", as: UUID.self) }
                #expect(listed == [mine])
            }
        }
    }

    @Test func updateSyncWatermarkRecordsTheWatermark() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant())
                let config: UUID = try await connection.query(
                    "INSERT INTO integration_sync_configs (integration_config_id, endpoint_name, sync_mode, incremental_key) VALUES ($1, 'employees', 'incremental', 'updated_at') RETURNING id",
                    [integration]
                )[0].decode("id")
                try await connection.query("SELECT update_sync_watermark(sync_config_id => $1, new_watermark_value => $2)", [config, "2025-11-22T10:00:00Z"])
                let row = try await connection.query(
                    "SELECT watermark_value, last_sync_timestamp IS NOT NULL AS stamped, sync_mode FROM integration_sync_configs WHERE id = $1",
                    [config]
                )[0]
                #expect(try row.decode("watermark_value", as: String.self) == "2025-11-22T10:00:00Z")
                #expect(try row.decode("stamped", as: Bool.self))
                #expect(try row.decode("sync_mode", as: String.self) == "incremental")

                try await connection.query("SELECT update_sync_watermark($1, $2)", [config, "2025-11-23T00:00:00Z"])
                #expect(try await connection.query("SELECT watermark_value FROM integration_sync_configs WHERE id = $1", [config])[0].decode("watermark_value", as: String.self) == "2025-11-23T00:00:00Z")

                // As in the platform's version, an unknown id (an endpoint deleted while its sync
                // ran) raises nothing: the caller's transaction goes on, and a NOTICE says why
                // nothing changed.
                let unknown = UUID()
                let notices = try await connection.withSession { session in
                    _ = session.takeNotices()
                    _ = try session.query("SELECT update_sync_watermark($1, 'x')", [unknown])
                    return session.takeNotices()
                }
                #expect(notices.contains { $0.contains("\(unknown.uuidString.lowercased()) does not exist") }, "notices: \(notices)")
            }
        }
    }

    @Test func syncModeOnlyTakesTheThreeModes() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                let rows = PlatformRows(connection)
                let integration = try await rows.integration(tenant: try await rows.tenant())
                let mode = try await connection.query(
                    "INSERT INTO integration_sync_configs (integration_config_id, endpoint_name) VALUES ($1, 'e') RETURNING sync_mode", [integration]
                )[0].decode("sync_mode", as: String.self)
                #expect(mode == "full")
                await #expect(throws: PostgresError.self) {
                    try await connection.query("INSERT INTO integration_sync_configs (integration_config_id, endpoint_name, sync_mode) VALUES ($1, 'f', 'sometimes')", [integration])
                }
            }
        }
    }
}
