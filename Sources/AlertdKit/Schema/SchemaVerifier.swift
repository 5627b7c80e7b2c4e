import AlertdPostgres

/// Checks, item by item, that everything the migrations create is present.
public struct SchemaVerifier: Sendable {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    public struct Result: Sendable, Equatable {
        public let item: String
        public let present: Bool
        /// Why a check could not tell, if it failed with an error.
        public let note: String?
    }

    /// Runs every check; one failing check never stops the others.
    public func verify() async throws -> [Result] {
        let checks = Self.checks
        return try await connection.withSession { session in
            checks.map { check in
                do {
                    let rows = try session.query(check.sql)
                    return Result(item: check.item, present: try check.expectation(rows), note: nil)
                } catch let error as PostgresError where Self.undefinedObjectStates.contains(error.sqlState ?? "") {
                    // The check reads a table, column or function that is not there: missing,
                    // as the item itself is (a partial or rolled-back schema).
                    return Result(item: check.item, present: false, note: nil)
                } catch let error as PostgresError {
                    return Result(item: check.item, present: false, note: "could not check: \(error.message)")
                } catch {
                    return Result(item: check.item, present: false, note: "\(error)")
                }
            }
        }
    }

    /// undefined_table, undefined_column, undefined_function, undefined_object.
    static let undefinedObjectStates: Set<String> = ["42P01", "42703", "42883", "42704"]

    struct Check: Sendable {
        let item: String
        let sql: String
        let expectation: @Sendable (PostgresRows) throws -> Bool
    }

    /// A check whose SQL returns one boolean column named `ok`.
    static func holds(_ item: String, _ condition: String) -> Check {
        Check(item: item, sql: "SELECT (\(condition)) AS ok") { rows in
            try rows.first?.decode("ok", as: Bool?.self) ?? false
        }
    }

    static func column(_ table: String, _ column: String) -> Check {
        holds("column \(table).\(column)", """
            EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_schema = 'public' AND table_name = '\(table)' AND column_name = '\(column)')
            """)
    }

    static func index(_ name: String) -> Check {
        holds("index \(name)", "to_regclass('public.\(name)') IS NOT NULL")
    }

    static func function(_ signature: String, _ condition: String = "true") -> Check {
        holds("function \(signature)", """
            EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = to_regprocedure('public.\(signature)') AND \(condition))
            """)
    }

    static func policy(_ table: String, _ name: String) -> Check {
        holds("policy \(name) on \(table)", "EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = '\(table)' AND policyname = '\(name)')")
    }

    static func rowLevelSecurity(_ table: String) -> Check {
        holds("row-level security on \(table)", "coalesce((SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass('public.\(table)')), false)")
    }

    static func grant(_ what: String, _ condition: String) -> Check {
        holds("grant \(what) to authenticated", """
            EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') AND \(condition)
            """)
    }

    static func executeGrant(_ signature: String) -> Check {
        grant("execute on \(signature)", """
            CASE WHEN to_regprocedure('public.\(signature)') IS NULL THEN false
                 ELSE has_function_privilege('authenticated', 'public.\(signature)', 'EXECUTE') END
            """)
    }

    static func tableGrant(_ table: String, _ privilege: String) -> Check {
        grant("\(privilege.lowercased()) on \(table)", """
            CASE WHEN to_regclass('public.\(table)') IS NULL THEN false
                 ELSE has_table_privilege('authenticated', 'public.\(table)', '\(privilege)') END
            """)
    }

    static func trigger(_ name: String) -> Check {
        holds("trigger \(name) on integration_sync_history", """
            EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '\(name)' AND tgrelid = to_regclass('public.integration_sync_history') AND tgenabled <> 'D')
            """)
    }

    static let checks: [Check] = {
        var checks: [Check] = [
            // The three verification queries of MIGRATION_INSTRUCTIONS.md, as written there.
            Check(item: "seed check: retry columns on integration_sync_history", sql: """
                SELECT column_name
                FROM information_schema.columns
                WHERE table_name = 'integration_sync_history'
                AND column_name IN ('retry_count', 'max_retries', 'retry_at');
                """) { Set($0.compactMap { $0["column_name"] }) == ["retry_count", "max_retries", "retry_at"] },
            Check(item: "seed check: table integration_alert_history", sql: """
                SELECT table_name
                FROM information_schema.tables
                WHERE table_name = 'integration_alert_history';
                """) { $0.contains { $0["table_name"] == "integration_alert_history" } },
            Check(item: "seed check: functions calculate_next_retry, schedule_sync_retry, update_sync_watermark", sql: """
                SELECT routine_name
                FROM information_schema.routines
                WHERE routine_name IN ('calculate_next_retry', 'schedule_sync_retry', 'update_sync_watermark');
                """) { Set($0.compactMap { $0["routine_name"] }) == ["calculate_next_retry", "schedule_sync_retry", "update_sync_watermark"] },
        ]
        for name in ["retry_count", "max_retries", "retry_at", "original_sync_id", "is_retry"] {
            checks.append(column("integration_sync_history", name))
        }
        for name in ["alert_on_failure", "alert_on_success", "alert_emails", "alert_webhook_url"] {
            checks.append(column("integration_configs", name))
        }
        for name in ["sync_mode", "last_sync_timestamp", "incremental_key", "watermark_value"] {
            checks.append(column("integration_sync_configs", name))
        }
        checks += [
            holds("table integration_alert_history", "to_regclass('public.integration_alert_history') IS NOT NULL"),
            index("idx_sync_history_retry_at"),
            index("idx_sync_history_original_sync"),
            index("idx_alert_history_config"),
            index("idx_alert_history_sync"),
            index("idx_alert_history_status"),
            function("calculate_next_retry(integer,integer)", "p.provolatile = 's' AND p.prorettype = 'timestamp'::regtype"),
            function("schedule_sync_retry(uuid,integer)", "p.prorettype = 'boolean'::regtype"),
            function("update_sync_watermark(uuid,text)", "p.prorettype = 'void'::regtype"),
            holds("view pending_sync_retries", """
                (SELECT array_agg(column_name::text ORDER BY ordinal_position) FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name = 'pending_sync_retries')
                = ARRAY['id','integration_config_id','endpoint_name','retry_count','max_retries','retry_at',
                        'error_message','integration_name','tenant_id']
                """),
            rowLevelSecurity("integration_alert_history"),
            policy("integration_alert_history", "alert_history_select_policy"),
            policy("integration_alert_history", "alert_history_insert_policy"),
            executeGrant("calculate_next_retry(integer,integer)"),
            executeGrant("schedule_sync_retry(uuid,integer)"),
            executeGrant("update_sync_watermark(uuid,text)"),
            tableGrant("pending_sync_retries", "SELECT"),
            tableGrant("integration_alert_history", "SELECT"),
            tableGrant("integration_alert_history", "INSERT"),
        ]
        // The alert outbox.
        for name in ["origin", "attempt_count", "max_attempts", "next_attempt_at", "last_attempt_at", "locked_by", "locked_until", "created_at"] {
            checks.append(column("integration_alert_history", name))
        }
        checks += [
            index("idx_alert_history_due"),
            index("idx_alert_history_trigger_once"),
            holds("table integration_alert_attempts", "to_regclass('public.integration_alert_attempts') IS NOT NULL"),
            rowLevelSecurity("integration_alert_attempts"),
            policy("integration_alert_attempts", "alert_attempts_select_policy"),
            tableGrant("integration_alert_attempts", "SELECT"),
            function("alertd_enqueue_sync_alerts()", "p.prosecdef"),
            trigger("alertd_enqueue_on_insert"),
            trigger("alertd_enqueue_on_status_change"),
            // 20251126: the trigger notifies only while a dispatcher holds the waiting lock.
            holds("trigger notifies only a waiting dispatcher", """
                (SELECT p.prosrc LIKE '%pg_try_advisory_xact_lock_shared(1634497140, 1)%' FROM pg_proc p
                  WHERE p.oid = to_regprocedure('public.alertd_enqueue_sync_alerts()'))
                """),
            // 20251127: incidents.
            holds("table integration_alert_incidents", "to_regclass('public.integration_alert_incidents') IS NOT NULL"),
            rowLevelSecurity("integration_alert_incidents"),
            policy("integration_alert_incidents", "alert_incidents_select_policy"),
            tableGrant("integration_alert_incidents", "SELECT"),
            holds("table alertd_settings with its row", "to_regclass('public.alertd_settings') IS NOT NULL AND EXISTS (SELECT 1 FROM public.alertd_settings)"),
            column("integration_alert_history", "incident_id"),
            index("idx_alert_history_incident"),
            holds("delivery status 'suppressed' and alert types 'recovery', 'reminder' allowed", """
                (SELECT count(*) = 2 FROM pg_constraint
                  WHERE conrelid = to_regclass('public.integration_alert_history') AND contype = 'c'
                    AND (pg_get_constraintdef(oid) LIKE '%''suppressed''%' OR pg_get_constraintdef(oid) LIKE '%''reminder''%'))
                """),
            holds("trigger opens incidents", """
                (SELECT p.prosrc LIKE '%integration_alert_incidents%' FROM pg_proc p
                  WHERE p.oid = to_regprocedure('public.alertd_enqueue_sync_alerts()'))
                """),
            holds("trigger alertd_delete_incidents_on_delete on integration_configs", """
                EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'alertd_delete_incidents_on_delete' AND tgrelid = to_regclass('public.integration_configs') AND tgenabled <> 'D')
                """),
            // 20251128: the news of an integration's endpoints grouped.
            column("integration_alert_incidents", "news_group"),
            column("integration_alert_incidents", "news_due_at"),
            index("idx_alert_incidents_open_news"),
            column("alertd_settings", "group_wait"),
            column("alertd_settings", "group_interval"),
            holds("trigger groups the news", """
                (SELECT p.prosrc LIKE '%news_due_at%' FROM pg_proc p
                  WHERE p.oid = to_regprocedure('public.alertd_enqueue_sync_alerts()'))
                """),
            // 20251129: overdue endpoints and stuck runs.
            column("integration_alert_incidents", "kind"),
            column("integration_alert_incidents", "expected_at"),
            column("integration_alert_incidents", "watch_from"),
            index("idx_alert_incidents_open_kind"),
            index("idx_sync_history_running"),
            function("alertd_integration_settings()", "p.prosecdef"),
            holds("table alertd_endpoint_watch", "to_regclass('public.alertd_endpoint_watch') IS NOT NULL"),
            rowLevelSecurity("alertd_endpoint_watch"),
            holds("alert types 'overdue' and 'stuck' allowed", """
                EXISTS (SELECT 1 FROM pg_constraint
                         WHERE conrelid = to_regclass('public.integration_alert_history') AND contype = 'c'
                           AND pg_get_constraintdef(oid) LIKE '%''stuck''%')
                """),
            holds("trigger keeps to incidents of kind 'run'", """
                (SELECT p.prosrc LIKE '%i.kind = ''run''%' FROM pg_proc p
                  WHERE p.oid = to_regprocedure('public.alertd_enqueue_sync_alerts()'))
                """),
            // 20251130: destination health.
            holds("table alertd_destinations", "to_regclass('public.alertd_destinations') IS NOT NULL"),
            rowLevelSecurity("alertd_destinations"),
            index("idx_alertd_destinations_circuit"),
            holds("alert type 'webhook_disabled' and origin 'destination' allowed", """
                (SELECT count(*) = 2 FROM pg_constraint
                  WHERE conrelid = to_regclass('public.integration_alert_history') AND contype = 'c'
                    AND (pg_get_constraintdef(oid) LIKE '%''webhook_disabled''%' OR pg_get_constraintdef(oid) LIKE '%''destination''%'))
                """),
            // 20251201: a repeat recorded by one plain insert, left out of the once-per-run index.
            function("alertd_alert_addresses(text[])"),
            holds("idx_alert_history_trigger_once leaves suppressed repeats out", """
                (SELECT pg_get_expr(x.indpred, x.indrelid) LIKE '%suppressed%' FROM pg_index x
                  WHERE x.indexrelid = to_regclass('public.idx_alert_history_trigger_once'))
                """),
            // 20251202: API users insert hand-written alerts only.
            holds("alert_history_insert_policy admits origin 'manual' only", """
                (SELECT pg_get_expr(p.polwithcheck, p.polrelid) LIKE '%origin%manual%' FROM pg_policy p
                  WHERE p.polrelid = to_regclass('public.integration_alert_history') AND p.polname = 'alert_history_insert_policy')
                """),
            // 20251203: a webhook signing secret per integration.
            holds("table alertd_signing_secrets", "to_regclass('public.alertd_signing_secrets') IS NOT NULL"),
            rowLevelSecurity("alertd_signing_secrets"),
            index("idx_alertd_signing_secrets_current"),
            function("alertd_signing_secrets(uuid[])"),
            function("alertd_new_signing_secret()"),
            holds("anon cannot read alertd_signing_secrets", "NOT has_table_privilege('anon', 'public.alertd_signing_secrets', 'SELECT')"),
            // 20251204: message limits.
            index("idx_alert_history_held"),
            holds("delivery status 'held', alert type 'held' and origin 'limit' allowed", """
                (SELECT count(*) = 3 FROM pg_constraint
                  WHERE conrelid = to_regclass('public.integration_alert_history') AND contype = 'c'
                    AND conname IN ('integration_alert_history_delivery_status_check', 'integration_alert_history_alert_type_check', 'integration_alert_history_origin_check')
                    AND pg_get_constraintdef(oid) ~ '''(held|limit)''')
                """),
        ]
        return checks
    }()
}
