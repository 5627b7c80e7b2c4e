import AlertdKit
import AlertdPostgres
import Foundation

/// The silent-failure sweep on a large platform: endpoints and runs written straight into a
/// database of their own in the bench's cluster, then swept as alertd sweeps them, as alertd's
/// role.
extension Benchmark {
    /// What the sweep phase measured.
    public struct SweepCost: Sendable {
        public var endpoints = 0
        public var runs = 0
        /// The first sweep statement set, nothing remembered yet: every endpoint past due by what
        /// the endpoints table says is looked up among the runs.
        public var firstSeconds = 0.0
        /// Sweeps until every overdue endpoint and stuck run was found, in all.
        public var findAllSeconds = 0.0
        public var overdueFound = 0
        public var stuckFound = 0
        /// A sweep with nothing due since the last (median).
        public var quietMilliseconds = 0.0
        /// A sweep a minute after the last: the endpoints due within that minute looked up
        /// (median), and how many those were.
        public var minuteLaterMilliseconds = 0.0
        public var minuteLaterLookups = 0
        /// EXPLAIN ANALYZE of the overdue statement a minute later, for the docs.
        public var plan = ""
    }

    static let sweepDatabase = "sweep"

    func sweepCost(cluster: BenchCluster) async throws -> SweepCost {
        var cost = SweepCost()
        let admin = try await PostgresConnection.connect(try PostgresConnectionString(cluster.url), logger: BenchDatabase.logger)
        try await admin.execute("CREATE DATABASE \(Self.sweepDatabase)")
        await admin.close()
        let owner = try await PostgresConnection.connect(try PostgresConnectionString(cluster.url(user: "postgres", database: Self.sweepDatabase)), logger: BenchDatabase.logger)
        defer { Task { await owner.close() } }
        let tool = DatabaseTool(connection: owner, sqlDirectory: try SQLDirectory.locate(flag: nil), output: { _ in })
        try await tool.initPlatform()
        try await tool.migrate()

        let integrations = max(1, options.sweepEndpoints / 10)
        progress.status("writing \(integrations * 10) endpoints and \(integrations * 10 * options.sweepRunsPerEndpoint) runs")
        try await populate(owner, integrations: integrations)
        cost.endpoints = try await owner.query("SELECT count(*)::integer AS n FROM integration_sync_configs")[0].decode("n")
        cost.runs = try await owner.query("SELECT count(*)::integer AS n FROM integration_sync_history")[0].decode("n")

        let alertd = try await PostgresConnection.connect(try PostgresConnectionString(cluster.url(user: BenchDatabase.role, database: Self.sweepDatabase)), logger: BenchDatabase.logger)
        defer { Task { await alertd.close() } }
        let store = SilentFailureStore(connection: alertd, worker: "bench")
        let settings = SilentFailureSettings()
        let batch = 200

        // Cold: nothing remembered.
        var start = ContinuousClock.now
        var sweep = try await store.sweep(settings, limit: batch)
        cost.firstSeconds = (ContinuousClock.now - start).seconds
        cost.overdueFound = sweep.overdue.incidents
        cost.stuckFound = sweep.stuck.incidents
        while sweep.overdue.incidents == batch || sweep.stuck.incidents == batch {
            sweep = try await store.sweep(settings, limit: batch)
            cost.overdueFound += sweep.overdue.incidents
            cost.stuckFound += sweep.stuck.incidents
        }
        cost.findAllSeconds = (ContinuousClock.now - start).seconds
        progress.status("found \(cost.overdueFound) overdue endpoints and \(cost.stuckFound) stuck runs in \(String(format: "%.1f", cost.findAllSeconds)) s")

        var quiet: [Double] = []
        for _ in 0..<5 {
            start = .now
            _ = try await store.sweep(settings, limit: batch)
            quiet.append((ContinuousClock.now - start).seconds * 1_000)
        }
        cost.quietMilliseconds = quiet.sorted()[quiet.count / 2]

        // A minute later in a platform whose endpoints run on schedule: an endpoint is due for a
        // look-up once per interval, so in any minute one in (its interval in minutes) of them
        // is. Those, picked at random, are made due (their remembered start an interval older);
        // the sweep looks them up, finds their newest runs, and remembers those again.
        var minute: [Double] = []
        var lookups: [Int] = []
        for _ in 0..<5 {
            try await owner.query(Self.aMinuteLater)
            let before: Date = try await owner.query("SELECT clock_timestamp() AS now")[0].decode("now")
            start = .now
            _ = try await store.sweep(settings, limit: batch)
            minute.append((ContinuousClock.now - start).seconds * 1_000)
            lookups.append(try await owner.query("SELECT count(*)::integer AS n FROM alertd_endpoint_watch WHERE checked_at >= $1", [before])[0].decode("n"))
        }
        cost.minuteLaterMilliseconds = minute.sorted()[minute.count / 2]
        cost.minuteLaterLookups = lookups.sorted()[lookups.count / 2]

        try await owner.query(Self.aMinuteLater)
        cost.plan = try await store.explainOverdue(settings, limit: batch)
        return cost
    }

    /// Makes the endpoints due for a look-up in one minute of a platform running on schedule
    /// due now.
    static let aMinuteLater = """
        UPDATE alertd_endpoint_watch w
           SET last_started_at = w.last_started_at - f.every
          FROM integration_sync_configs e
         CROSS JOIN LATERAL (SELECT \(SilentFailureStore.interval("e.sync_frequency")) AS every) f
         WHERE e.integration_config_id = w.integration_config_id AND e.endpoint_name = w.endpoint_name
           AND random() < 60 / extract(epoch FROM f.every)
        """

    /// `integrations` integrations of ten endpoints each, on every schedule (half with
    /// next_sync_at), `sweepRunsPerEndpoint` runs each, the newest within its interval; one
    /// endpoint in a hundred overdue; a hundred runs running, twenty of them for seven hours.
    /// Written with triggers off (`session_replication_role = replica`), as a restore would.
    private func populate(_ owner: PostgresConnection, integrations: Int) async throws {
        try await owner.execute(
            """
            SET session_replication_role = replica;
            INSERT INTO tenants (name) VALUES ('Sweep');
            INSERT INTO integration_configs (tenant_id, integration_type, integration_name, alert_webhook_url)
            SELECT (SELECT id FROM tenants), 'type-' || n, 'Integration ' || n, 'https://hooks.example.com/sweep'
              FROM generate_series(1, \(integrations)) AS n;
            CREATE TEMP TABLE plan AS
            SELECT c.id AS integration_config_id, 'endpoint-' || k AS endpoint_name, f.frequency, f.every,
                   k % 2 = 0 AS scheduled, (hashtext(c.id::text || k) & 1023) % 100 = 0 AS overdue,
                   (now() AT TIME ZONE 'UTC')
                     - f.every * CASE WHEN (hashtext(c.id::text || k) & 1023) % 100 = 0 THEN 3
                                      ELSE 0.1 + 0.8 * ((hashtext(k || c.id::text) & 1023) / 1024.0) END AS latest
              FROM integration_configs c
             CROSS JOIN generate_series(1, 10) AS k
             CROSS JOIN LATERAL (
               SELECT CASE k % 10 WHEN 0 THEN 'every_15_min' WHEN 1 THEN 'daily' WHEN 2 THEN 'daily' WHEN 3 THEN 'weekly' ELSE 'hourly' END AS frequency
             ) n
             CROSS JOIN LATERAL (SELECT n.frequency, \(SilentFailureStore.interval("n.frequency")) AS every) f;
            INSERT INTO integration_sync_configs
                   (integration_config_id, endpoint_name, sync_frequency, is_enabled, next_sync_at, created_at, updated_at)
            SELECT integration_config_id, endpoint_name, frequency, true, CASE WHEN scheduled THEN latest + every END,
                   (now() AT TIME ZONE 'UTC') - interval '60 days', (now() AT TIME ZONE 'UTC') - interval '60 days'
              FROM plan;
            INSERT INTO integration_sync_history
                   (integration_config_id, endpoint_name, sync_started_at, sync_completed_at, status, records_synced)
            SELECT p.integration_config_id, p.endpoint_name, p.latest - p.every * i, p.latest - p.every * i + interval '2 minutes',
                   'success', 100
              FROM plan p CROSS JOIN generate_series(0, \(options.sweepRunsPerEndpoint - 1)) AS i;
            INSERT INTO integration_sync_history (integration_config_id, endpoint_name, sync_started_at, status)
            SELECT p.integration_config_id, p.endpoint_name,
                   (now() AT TIME ZONE 'UTC') - CASE WHEN row_number() OVER () <= 20 THEN interval '7 hours' ELSE interval '5 minutes' END,
                   'running'
              FROM (SELECT * FROM plan WHERE NOT overdue ORDER BY hashtext(endpoint_name || integration_config_id::text) LIMIT 100) p;
            RESET session_replication_role;
            ANALYZE;
            """
        )
    }
}
