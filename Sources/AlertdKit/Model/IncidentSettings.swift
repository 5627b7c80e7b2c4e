/// Incidents' defaults for every integration (`ALERTD_INCIDENTS`,
/// `ALERTD_INCIDENT_REPEAT_INTERVAL`), which `alertd run` writes to `alertd_settings` for the
/// trigger and every instance, and how often this instance looks for reminders due.
///
/// An integration overrides the defaults with the key `alertd` of its
/// `configuration_metadata`: `{"alertd": {"incidents": "off"}}`, or
/// `{"alertd": {"repeat_interval_minutes": 60}}` (0 for no reminders), or
/// `{"alertd": {"group_wait_seconds": 0, "group_interval_seconds": 60}}`.
public struct IncidentSettings: Sendable, Equatable {
    public static let defaultRepeatInterval: Duration = .seconds(4 * 3600)
    public static let defaultSweepInterval: Duration = .seconds(30)
    /// None: an integration's first failing endpoint is news at once, as fast as any alert.
    public static let defaultGroupWait: Duration = .zero
    /// A minute: the other endpoints of an integration that fail within a minute of the first
    /// go out together, a minute after it (66 s at most: held news is due on a grid of a tenth
    /// of the interval).
    public static let defaultGroupInterval: Duration = .seconds(60)

    /// Whether a failing endpoint opens an incident whose repeats are suppressed.
    public var enabled = true
    /// How long an incident stays open before its reminder, and between reminders; nil for none.
    public var repeatInterval: Duration? = defaultRepeatInterval
    /// How long the news of an integration's first failing endpoint waits for others to join
    /// its message.
    public var groupWait: Duration = defaultGroupWait
    /// After an integration's news went out, how long the news of its other endpoints is held to
    /// go out together; zero for no grouping.
    public var groupInterval: Duration = defaultGroupInterval
    /// How often this instance looks for incidents due a reminder.
    public var sweepInterval: Duration = defaultSweepInterval

    public init() {}
}
