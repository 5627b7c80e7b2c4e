/// How alertd watches for failures that write nothing: endpoints whose scheduled run did not
/// start (`ALERTD_OVERDUE`, `ALERTD_OVERDUE_GRACE`) and runs still running far longer than
/// their endpoint usually takes (`ALERTD_STUCK`, `ALERTD_STUCK_AFTER_MIN`,
/// `ALERTD_STUCK_AFTER_MAX`), and how often it looks (`ALERTD_SILENT_SWEEP_INTERVAL`).
///
/// An integration overrides them with the key `alertd` of its `configuration_metadata`:
/// `{"alertd": {"overdue": "off", "overdue_grace_minutes": 30, "stuck": "off",
/// "stuck_after_minutes": 90}}`.
public struct SilentFailureSettings: Sendable, Equatable {
    /// The least grace an overdue endpoint gets; above it, a quarter of its interval.
    public static let defaultOverdueGrace: Duration = .seconds(5 * 60)
    /// A run is stuck after three times its endpoint's typical duration, at least this long...
    public static let defaultStuckAfterMinimum: Duration = .seconds(15 * 60)
    /// ...and at most this long; also the threshold when nothing says what is typical.
    public static let defaultStuckAfterMaximum: Duration = .seconds(6 * 3600)
    /// How many times its typical duration a run may take before it is stuck.
    public static let stuckFactor = 3
    public static let defaultSweepInterval: Duration = .seconds(60)
    /// Runs that started longer ago than this and still say `running` are the platform's
    /// leftovers, not news: alertd does not call them stuck (a restart shorter than this loses
    /// nothing).
    public static let stuckHorizon: Duration = .seconds(7 * 86_400)

    public var overdue = true
    public var overdueGrace: Duration = defaultOverdueGrace
    public var stuck = true
    public var stuckAfterMinimum: Duration = defaultStuckAfterMinimum
    public var stuckAfterMaximum: Duration = defaultStuckAfterMaximum
    public var sweepInterval: Duration = defaultSweepInterval

    public init() {}

    /// The `sync_frequency` words that schedule runs, and their intervals (`manual`, `real_time`
    /// and words alertd does not know schedule nothing). The sweep's SQL applies these rules
    /// (`SilentFailureStore`): the grace is a quarter of the interval, at least `overdueGrace`; a
    /// run is stuck after `stuckFactor` times its typical duration, between the minimum and the
    /// maximum, or after the maximum when nothing says what is typical.
    public static let scheduled: [(frequency: String, interval: Duration)] = [
        ("every_15_min", .seconds(15 * 60)), ("hourly", .seconds(3600)), ("daily", .seconds(86_400)), ("weekly", .seconds(7 * 86_400)),
    ]
}
