/// Something that happens once (a thread has ended): tasks wait for it without holding a thread
/// of the pool, and a wait after it happened returns at once.
public final class OneTimeEvent: Sendable {
    private let happened = OneTimeResult<Void>()

    public init() {}

    public var hasHappened: Bool { happened.isSet }

    /// Marks it happened and resumes every waiter.
    public func signal() {
        happened.set(())
    }

    public func wait() async {
        await happened.value
    }
}
