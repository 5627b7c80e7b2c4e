import AlertdKit
import AlertdPostgres
import AlertdTestSupport
import Foundation
import Testing

@Suite struct AlertStoreTests {
    /// An integration with both channels and `runs` failed sync runs: 2 × runs pending alerts.
    static func queue(_ connection: PostgresConnection, runs: Int) async throws {
        let rows = PlatformRows(connection)
        let integration = try await rows.integration(tenant: try await rows.tenant(), emails: ["ops@example.com"], webhook: "https://hooks.example.com/x")
        for n in 0..<runs { try await rows.syncRun(integration: integration, status: "failed", endpoint: "e\(n)") }
    }

    @Test func claimsDueAlertsWithTheirContextUnderALease() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                try await Self.queue(connection, runs: 3)
                let store = AlertStore(connection: connection, worker: "a")
                let claimed = try await store.claim(limit: 10, channels: [.webhook], lease: .seconds(60))
                #expect(claimed.count == 3)
                let first = try #require(claimed.first)
                #expect(first.channel == .webhook && first.type == .failure && first.origin == .trigger)
                #expect(first.attempt == 1 && first.maxAttempts == 10)
                #expect(first.recipients == ["https://hooks.example.com/x"])
                #expect(first.integration?.type == "paycom")
                #expect(first.sync?.status == "failed")
                // Leased: nothing more to claim, for this instance or another.
                #expect(try await store.claim(limit: 10, channels: [.webhook], lease: .seconds(60)).isEmpty)
                #expect(try await AlertStore(connection: connection, worker: "b").claim(limit: 10, channels: [.webhook], lease: .seconds(60)).isEmpty)
                let lease = try await connection.query("SELECT count(*) AS n FROM integration_alert_history WHERE locked_by = 'a' AND locked_until > now()")
                #expect(try lease[0].decode("n", as: Int.self) == 3)
            }
        }
    }

    @Test func twoInstancesClaimingAtOnceNeverGetTheSameAlert() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { try await Self.queue($0, runs: 100) }
            let one = try await database.connect()
            let two = try await database.connect()
            async let a = AlertStore(connection: one, worker: "one").claim(limit: 70, channels: [.email, .webhook], lease: .seconds(60))
            async let b = AlertStore(connection: two, worker: "two").claim(limit: 70, channels: [.email, .webhook], lease: .seconds(60))
            let (claimedA, claimedB) = try await (a, b)
            let idsA = Set(claimedA.map(\.id))
            let idsB = Set(claimedB.map(\.id))
            #expect(idsA.isDisjoint(with: idsB))
            #expect(idsA.count + idsB.count == 140)
            await one.close()
            await two.close()
        }
    }

    @Test func anExpiredLeaseMakesTheAlertDueAgain() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                try await Self.queue(connection, runs: 1)
                let crashed = AlertStore(connection: connection, worker: "crashed")
                #expect(try await crashed.claim(limit: 10, channels: [.email], lease: .milliseconds(200)).count == 1)
                try await Task.sleep(for: .milliseconds(400))
                let again = try await AlertStore(connection: connection, worker: "survivor").claim(limit: 10, channels: [.email], lease: .seconds(60))
                #expect(again.map(\.attempt) == [2])
                // The crashed instance can no longer record over the survivor's lease.
                let late = AttemptOutcome(alertID: try #require(again.first).id, attempt: 1, result: .sent, startedAt: Date(), duration: .milliseconds(5))
                #expect(try await crashed.record([late]).isEmpty)
            }
        }
    }

    @Test func recordsABatchOfOutcomesInOneGo() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                try await Self.queue(connection, runs: 2)
                let store = AlertStore(connection: connection, worker: "w")
                let claimed = try await store.claim(limit: 10, channels: [.email, .webhook], lease: .seconds(60))
                #expect(claimed.count == 4)
                let now = Date()
                let sent = AttemptOutcome(alertID: claimed[0].id, attempt: 1, result: .sent, startedAt: now, duration: .milliseconds(12), httpStatus: 200, subject: "Sync failed")
                let retry = AttemptOutcome(
                    alertID: claimed[1].id, attempt: 1, result: .retry, startedAt: now, duration: .milliseconds(30),
                    httpStatus: 503, error: "HTTP 503", retryIn: .seconds(120)
                )
                let failed = AttemptOutcome(alertID: claimed[2].id, attempt: 1, result: .failed, startedAt: now, duration: .milliseconds(3), error: "HTTP 410")
                let bounced = AttemptOutcome(
                    alertID: claimed[3].id, attempt: 1, result: .bounced, startedAt: now, duration: .milliseconds(3),
                    smtpReply: "550 5.1.1 no such user", error: "refused by the server", details: #"{"recipients": {"ops@example.com": "550"}}"#
                )
                let recorded = try await store.record([sent, retry, failed, bounced])
                #expect(recorded == Set(claimed.map(\.id)))

                let state = try await connection.query(
                    """
                    SELECT a.id, a.delivery_status, a.delivery_error, a.sent_at IS NOT NULL AS stamped, a.locked_by IS NULL AS unlocked,
                           round(extract(epoch FROM a.next_attempt_at - now()))::int AS due_in, a.subject,
                           t.outcome, t.http_status, t.smtp_reply, t.duration_ms, t.worker, t.details->'recipients'->>'ops@example.com' AS detail
                      FROM integration_alert_history a JOIN integration_alert_attempts t ON t.alert_id = a.id
                    """
                )
                let byID = Dictionary(uniqueKeysWithValues: try state.map { (try $0.decode("id", as: UUID.self), $0) })
                let sentRow = try #require(byID[claimed[0].id])
                #expect(try sentRow.decode("delivery_status", as: String.self) == "sent")
                #expect(try sentRow.decode("stamped", as: Bool.self))
                #expect(try sentRow.decode("subject", as: String?.self) == "Sync failed")
                #expect(try sentRow.decode("http_status", as: Int?.self) == 200)
                #expect(try sentRow.decode("duration_ms", as: Int.self) == 12)
                #expect(try sentRow.decode("worker", as: String.self) == "w")
                let retryRow = try #require(byID[claimed[1].id])
                #expect(try retryRow.decode("delivery_status", as: String.self) == "pending")
                #expect(try retryRow.decode("delivery_error", as: String?.self) == "HTTP 503")
                #expect((118...120).contains(try retryRow.decode("due_in", as: Int.self)))
                #expect(try retryRow.decode("unlocked", as: Bool.self))
                #expect(try #require(byID[claimed[2].id]).decode("delivery_status", as: String.self) == "failed")
                let bouncedRow = try #require(byID[claimed[3].id])
                #expect(try bouncedRow.decode("delivery_status", as: String.self) == "bounced")
                #expect(try bouncedRow.decode("smtp_reply", as: String?.self) == "550 5.1.1 no such user")
                #expect(try bouncedRow.decode("detail", as: String?.self) == "550")
                #expect(try await store.nextDue(channels: [.webhook, .email]) != nil)
            }
        }
    }

    @Test func releasedAlertsAreDueAtOnceWithoutCountingAnAttempt() async throws {
        try await TestPostgres.withDatabase { database in
            try await database.withConnection { connection in
                try await Self.queue(connection, runs: 1)
                let store = AlertStore(connection: connection, worker: "w")
                let claimed = try await store.claim(limit: 10, channels: [.webhook], lease: .seconds(60))
                try await store.release(claimed.map(\.id))
                let again = try await AlertStore(connection: connection, worker: "x").claim(limit: 10, channels: [.webhook], lease: .seconds(60))
                #expect(again.map(\.attempt) == [1])
            }
        }
    }
}
