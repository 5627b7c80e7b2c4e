/// How alertd treats a destination that keeps failing (a webhook URL, its SMTP relay): when its
/// circuit opens, how its probes are spaced, how long an alert may wait for it, and when a
/// webhook URL is disabled. docs/operations.md#destination-health explains them.
public struct DestinationSettings: Sendable, Equatable {
    /// Failures in a row (no connection, a timeout, 5xx, 429) that open a destination's circuit;
    /// nil: circuits never open, and every alert retries on its own schedule.
    public var circuitFailures: Int? = 5
    /// The wait before the first probe of an open circuit; it doubles with each failed probe, up
    /// to `probeMaximum`, with ±20% jitter so that instances and destinations spread out.
    public var probeInitial: Duration = .seconds(5)
    public var probeMaximum: Duration = .seconds(300)
    /// The longest an alert waits to be delivered, counted from its creation (or its last
    /// replay); past it, it fails, saying so.
    public var maxAge: Duration = .seconds(3 * 86_400)
    /// How long a webhook URL may fail without a success before it is disabled; nil: only a
    /// 410 Gone disables one.
    public var disableAfter: Duration? = .seconds(5 * 86_400)
    /// How often alertd looks for alerts waiting too long, and for waiting alerts whose
    /// destination's circuit closed without them noticing (a second instance's race).
    public var sweepInterval: Duration = .seconds(5)

    public static let defaultCircuitFailures = 5
    public static let defaultProbeMaximum: Duration = .seconds(300)
    public static let defaultMaxAge: Duration = .seconds(3 * 86_400)
    public static let defaultDisableAfter: Duration = .seconds(5 * 86_400)

    public init() {}

}
