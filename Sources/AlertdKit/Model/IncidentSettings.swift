/// Incidents' defaults for every integration (`ALERTD_INCIDENTS`,
/// `ALERTD_INCIDENT_REPEAT_INTERVAL`), which `alertd run` writes to `alertd_settings` for the
/// trigger and every instance, and how often this instance looks for reminders due.
///
/// An integration overrides the defaults with the key `alertd` of its
/// `configuration_metadata`: `{"alertd": {"incidents": "off"}}`, or
/// `{"alertd": {"repeat_interval_minutes": 60}}` (0 for no reminders).
public struct IncidentSettings: Sendable, Equatable {
    public static let defaultRepeatInterval: Duration = .seconds(4 * 3600)
    public static let defaultSweepInterval: Duration = .seconds(30)

    /// Whether a failing endpoint opens an incident whose repeats are suppressed.
    public var enabled = true
    /// How long an incident stays open before its reminder, and between reminders; nil for none.
    public var repeatInterval: Duration? = defaultRepeatInterval
    /// How often this instance looks for incidents due a reminder.
    public var sweepInterval: Duration = defaultSweepInterval

    public init() {}
}
