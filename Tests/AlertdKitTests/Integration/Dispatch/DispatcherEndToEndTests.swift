import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

/// `alertd run` as a process, against a real PostgreSQL and a real HTTP receiver.
@Suite struct DispatcherEndToEndTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    static func environment(_ database: TestDatabase, _ extra: [String: String] = [:]) -> [String: String] {
        [
            "ALERTD_DATABASE_URL": database.alertdURL,
            "ALERTD_WEBHOOK_SECRET": secret,
            "ALERTD_WEBHOOK_ALLOW": "127.0.0.1",
            "ALERTD_RETRY_INITIAL": "100ms",
            "ALERTD_RETRY_MAX": "200ms",
            "ALERTD_POLL_INTERVAL": "1s",
            "ALERTD_LOG_LEVEL": "info",
        ].merging(extra) { $1 }
    }

    /// Failed sync runs of one integration whose webhook goes to `url`.
    static func failRuns(_ database: TestDatabase, webhook url: String, count: Int = 1) async throws {
        try await database.withConnection { connection in
            let rows = PlatformRows(connection)
            let integration = try await rows.integration(tenant: try await rows.tenant(), name: "Paycom \"EU\"", webhook: url)
            for n in 0..<count {
                let run = try await rows.syncRun(integration: integration, endpoint: "employees-\(n)")
                try await connection.query("UPDATE integration_sync_history SET status = 'failed', error_message = $2 WHERE id = $1", [run, "token expired\nline two"])
            }
        }
    }

    static func waitUntil(_ timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSetupError("condition not met within \(timeout)")
    }

    /// Attempts recorded in integration_alert_attempts, for every alert.
    static func attemptsRecorded(_ database: TestDatabase) async throws -> Int {
        try await database.withConnection { connection in
            try await connection.query("SELECT count(*)::int AS n FROM integration_alert_attempts")[0].decode("n", as: Int.self)
        }
    }

    static func statuses(_ database: TestDatabase) async throws -> [String] {
        try await database.withConnection { connection in
            try await connection.query("SELECT delivery_status FROM integration_alert_history ORDER BY delivery_status").map { try $0.decode("delivery_status") }
        }
    }

    @Test func aFailedSyncReachesTheReceiverAsASignedWebhook() async throws {
        let receiver = try await WebhookReceiver.start(verifyingWith: Self.secret)
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database))
            try await Self.failRuns(database, webhook: receiver.url("/hooks/ok"))
            let request = try #require(try await receiver.waitForRequests(1).first)
            #expect(request.signature_valid == true)
            #expect(request.headers["content-type"] == "application/json")
            #expect(request.headers["user-agent"] == "alertd/\(AlertdVersion.string)")
            let body = try #require(try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any])
            #expect(body["type"] as? String == "sync.failure")
            let data = try #require(body["data"] as? [String: Any])
            #expect((data["integration"] as? [String: Any])?["name"] as? String == "Paycom \"EU\"")
            #expect((data["sync"] as? [String: Any])?["error_message"] as? String == "token expired\nline two")

            try await Self.waitUntil { try await Self.statuses(database) == ["sent"] }
            try await database.withConnection { connection in
                let row = try await connection.query(
                    """
                    SELECT a.id, a.sent_at IS NOT NULL AS stamped, a.subject, a.locked_by IS NULL AS unlocked,
                           t.outcome, t.http_status, t.attempt_number
                      FROM integration_alert_history a JOIN integration_alert_attempts t ON t.alert_id = a.id
                    """
                )
                #expect(row.count == 1)
                let id = try row[0].decode("id", as: UUID.self)
                #expect(request.headers["webhook-id"] == "msg_\(id.uuidString.lowercased())")
                #expect(try row[0].decode("stamped", as: Bool.self))
                #expect(try row[0].decode("unlocked", as: Bool.self))
                #expect(try row[0].decode("subject", as: String?.self) == "[alertd] Sync failed: Paycom \"EU\" · employees-0")
                #expect(try row[0].decode("outcome", as: String.self) == "sent")
                #expect(try row[0].decode("http_status", as: Int?.self) == 200)
            }
            await alertd.stopExpectingExitZero(signal: SIGTERM)
            #expect(alertd.output.contains("alertd stopped"))
            #expect(!alertd.output.contains(Self.secret))
            #expect(!alertd.output.contains(TestPostgres.password))
        }
    }

    /// Which backends hold the waiting lock (the trigger notifies only while one does).
    static func waitingLockHolders(_ database: TestDatabase) async throws -> [String] {
        try await database.withConnection { connection in
            try await connection.query(
                """
                SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2
                   AND l.mode = 'ExclusiveLock' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                """,
                [AlertStore.waitingLock.classID, AlertStore.waitingLock.objectID]
            ).map { try $0.decode("application_name") }
        }
    }

    /// An idle alertd holds the waiting lock, so writers notify it; after a burst it has let go
    /// of to deliver, it takes the lock again once nothing is due.
    @Test func anIdleAlertdHoldsTheWaitingLockAndTakesItAgainAfterABurst() async throws {
        let receiver = try await WebhookReceiver.start(verifyingWith: Self.secret)
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database, ["ALERTD_POLL_INTERVAL": "10m"]))
            try await Self.waitUntil { try await Self.waitingLockHolders(database) == ["alertd"] }
            try await Self.failRuns(database, webhook: receiver.url("/hooks/ok"), count: 100)
            _ = try await receiver.waitForRequests(100)
            try await Self.waitUntil { try await Self.statuses(database) == Array(repeating: "sent", count: 100) }
            try await Self.waitUntil { try await Self.waitingLockHolders(database) == ["alertd"] }
            await alertd.stopExpectingExitZero()
            #expect(try await Self.waitingLockHolders(database) == [])
        }
    }

    @Test func aReceiverAnswering503Then503Then200GetsThreeAttemptsWithOneWebhookID() async throws {
        let receiver = try await WebhookReceiver.start(verifyingWith: Self.secret)
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database))
            try await Self.failRuns(database, webhook: receiver.url("/codes/503,503,200/a"))
            let requests = try await receiver.waitForRequests(3)
            #expect(Set(requests.map { $0.headers["webhook-id"] ?? "" }).count == 1)
            #expect(requests.allSatisfy { $0.signature_valid == true })
            try await Self.waitUntil { try await Self.statuses(database) == ["sent"] }
            let attempts = try await database.withConnection { connection in
                try await connection.query("SELECT outcome, http_status, error FROM integration_alert_attempts ORDER BY attempt_number").map {
                    "\(try $0.decode("outcome", as: String.self)) \(try $0.decode("http_status", as: Int?.self) ?? 0)"
                }
            }
            #expect(attempts == ["retry 503", "retry 503", "sent 200"])
            await alertd.stopExpectingExitZero()
        }
    }

    @Test func retryAfterIsHonoured() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database))
            try await Self.failRuns(database, webhook: receiver.url("/codes/503,200/a?retry_after=2"))
            let requests = try await receiver.waitForRequests(2)
            // The backoff alone would have waited 100 to 200 ms.
            #expect(requests[1].time - requests[0].time >= 1.9)
            try await Self.waitUntil { try await Self.statuses(database) == ["sent"] }
            await alertd.stopExpectingExitZero()
        }
    }

    @Test func gone410IsFinal() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database))
            try await Self.failRuns(database, webhook: receiver.url("/codes/410/a"))
            try await Self.waitUntil { try await Self.statuses(database) == ["failed"] }
            let error = try await database.withConnection { connection in
                try await connection.query("SELECT delivery_error FROM integration_alert_history")[0].decode("delivery_error", as: String.self)
            }
            #expect(error.contains("HTTP 410"))
            // Final: one attempt recorded, and the alert is no longer due, so none can follow.
            #expect(try await Self.attemptsRecorded(database) == 1)
            #expect(try receiver.requests().count == 1)
            await alertd.stopExpectingExitZero()
        }
    }

    @Test func twoInstancesDeliverEachAlertOnce() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let one = try AlertdProcess.start(environment: Self.environment(database, ["ALERTD_INSTANCE": "one", "ALERTD_BATCH_SIZE": "5"]))
            let two = try AlertdProcess.start(environment: Self.environment(database, ["ALERTD_INSTANCE": "two", "ALERTD_BATCH_SIZE": "5"]))
            try await Self.failRuns(database, webhook: receiver.url("/hooks/many"), count: 60)
            try await Self.waitUntil(.seconds(60)) { try await Self.statuses(database) == Array(repeating: "sent", count: 60) }
            let requests = try receiver.requests()
            #expect(requests.count == 60)
            #expect(Set(requests.compactMap { $0.headers["webhook-id"] }).count == 60)
            let workers = try await database.withConnection { connection in
                try await connection.query("SELECT DISTINCT worker FROM integration_alert_attempts ORDER BY 1").map { try $0.decode("worker", as: String.self) }
            }
            #expect(workers.allSatisfy { ["one", "two"].contains($0) })
            await one.stopExpectingExitZero()
            await two.stopExpectingExitZero()
        }
    }

    @Test func sigkillMidRunLosesNothingAndRedeliversOnlyWhatWasInFlight() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let environment = Self.environment(database, [
                "ALERTD_LEASE": "3s", "ALERTD_WEBHOOK_TIMEOUT": "2s", "ALERTD_BATCH_SIZE": "4", "ALERTD_MAX_IN_FLIGHT": "4",
            ])
            try await Self.failRuns(database, webhook: receiver.url("/sleep/0.3/slow"), count: 24)
            let first = try AlertdProcess.start(environment: environment)
            _ = try await receiver.waitForRequests(6)
            await first.stop(signal: SIGKILL)
            let second = try AlertdProcess.start(environment: environment)
            try await Self.waitUntil(.seconds(60)) { try await Self.statuses(database) == Array(repeating: "sent", count: 24) }
            let requests = try receiver.requests()
            let ids = requests.compactMap { $0.headers["webhook-id"] }
            #expect(Set(ids).count == 24)
            // Only what was in flight at the kill (at most 4) may arrive twice.
            #expect(ids.count - 24 <= 4)
            await second.stopExpectingExitZero()
        }
    }
}

extension DispatcherEndToEndTests {
    @Test func sigtermReleasesWhatIsStillInFlightAfterTheGraceAndExitsZero() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database, [
                "ALERTD_SHUTDOWN_GRACE": "500ms", "ALERTD_WEBHOOK_TIMEOUT": "20s", "ALERTD_LEASE": "60s",
            ]))
            try await Self.failRuns(database, webhook: receiver.url("/sleep/30/stuck"))
            _ = try await receiver.waitForRequests(1)
            let stopped = ContinuousClock.now
            await alertd.stopExpectingExitZero(signal: SIGTERM, timeout: .seconds(15))
            #expect(ContinuousClock.now - stopped < .seconds(15))
            #expect(alertd.output.contains("released in-flight alerts at shutdown"))
            let row = try await database.withConnection { connection in
                try await connection.query("SELECT delivery_status, locked_by, attempt_count FROM integration_alert_history")[0]
            }
            #expect(try row.decode("delivery_status", as: String.self) == "pending")
            #expect(try row.decode("locked_by", as: String?.self) == nil)
            #expect(try row.decode("attempt_count", as: Int.self) == 0)
        }
    }

    @Test func sigtermWhileIdleExitsZeroAtOnce() async throws {
        try await TestPostgres.withDatabase { database in
            let alertd = try AlertdProcess.start(environment: Self.environment(database))
            try await Self.waitUntil { alertd.output.contains("alertd started") }
            await alertd.stopExpectingExitZero(signal: SIGINT, timeout: .seconds(10))
        }
    }
}

extension DispatcherEndToEndTests {
    @Test func sigtermWhileTheDatabaseIsUnreachableExitsZero() async throws {
        let alertd = try AlertdProcess.start(environment: ["ALERTD_DATABASE_URL": "postgresql://alertd@127.0.0.1:1/x?connect_timeout=2"])
        try await Self.waitUntil { alertd.output.contains("cannot connect to PostgreSQL; trying again") }
        await alertd.stopExpectingExitZero(signal: SIGTERM, timeout: .seconds(10))
    }
}

extension DispatcherEndToEndTests {
    @Test func aWebhookToAnInternalAddressIsAFinalFailureNotARetryLoop() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        try await TestPostgres.withDatabase { database in
            var environment = Self.environment(database)
            environment.removeValue(forKey: "ALERTD_WEBHOOK_ALLOW")
            let alertd = try AlertdProcess.start(environment: environment)
            try await Self.failRuns(database, webhook: "http://localhost:\(receiver.port)/hooks/internal")
            try await Self.waitUntil { try await Self.statuses(database) == ["failed"] }
            let row = try await database.withConnection { connection in
                try await connection.query("SELECT delivery_error, attempt_count FROM integration_alert_history")[0]
            }
            #expect(try row.decode("attempt_count", as: Int.self) == 1)
            #expect(try row.decode("delivery_error", as: String.self).contains("host localhost resolves to"))
            #expect(try receiver.requests().isEmpty)
            await alertd.stopExpectingExitZero()
        }
    }
}
