import AlertdSupport

/// Decides how many alerts to claim next, and when to wait instead: the dispatcher's judgement,
/// apart from its database calls, so that it can be tested without a server.
///
/// A host with more due webhooks than it may have in flight (a backlog, or a slow receiver) is
/// "deep": claims are then sized to its free places, taken once a quarter of them are free, so
/// that no claim takes rows only to give them back. While every deep host is full, the table is
/// searched for other hosts' work every `otherWorkInterval`, or `notifiedOtherWorkInterval` after
/// a notification, and no more often: that search reads past the deep hosts' backlogs.
///
/// With nothing due, the dispatcher takes the waiting lock before it sleeps, so that writers
/// notify (docs/architecture.md, "Notifying only while a dispatcher waits"); with a backlog it
/// lets the lock go, and writers stop notifying.
struct ClaimPlanner: Sendable {
    let batchSize: Int
    let maxInFlight: Int
    /// Webhooks one host may have in flight.
    let perHost: Int
    let pollInterval: Duration

    /// Hosts with a backlog.
    private(set) var deep: Set<String> = []
    private var lastOtherWorkSearch: ContinuousClock.Instant?
    /// Whether this instance's claims session holds the waiting lock, so that writers notify.
    private(set) var holdingWaitingLock = false
    /// Database calls that failed in a row.
    private var failures = 0

    /// While every host with a backlog is full, how often the table is searched for other work.
    static let otherWorkInterval: Duration = .milliseconds(250)
    /// The same after a notification.
    static let notifiedOtherWorkInterval: Duration = .milliseconds(50)
    /// How long a dispatcher with nothing due waits for writers that skipped their notification
    /// to commit, before it takes the waiting lock and sleeps.
    static let waitingLockTimeout: Duration = .milliseconds(200)
    /// How often to look for work while the waiting lock cannot be taken because a writer's
    /// transaction is open.
    static let unnotifiedPollInterval: Duration = .milliseconds(100)
    /// The longest sleep while holding the waiting lock: a claim on a connection found broken
    /// makes it again, and takes the lock anew.
    static let waitingLockCheckInterval: Duration = .seconds(5)
    /// A claim this large means a backlog: the waiting lock is let go.
    static let backlogClaim = 32
    /// Waits between database calls that failed: short, so that work resumes soon after the
    /// database is back.
    static let databaseRetry = Backoff(initial: .milliseconds(100), maximum: .seconds(5))

    init(batchSize: Int, maxInFlight: Int, perHost: Int, pollInterval: Duration) {
        self.batchSize = batchSize
        self.maxInFlight = maxInFlight
        self.perHost = perHost
        self.pollInterval = pollInterval
    }

    /// What to do next.
    enum Step: Equatable {
        /// Claim up to `limit` due alerts; `searchesOtherWork` says the claim may read past the
        /// deep hosts' backlogs for other hosts' work.
        case claim(limit: Int, searchesOtherWork: Bool)
        /// Nothing to claim yet: wait for a wake-up, at most this long.
        case wait(Duration)
    }

    /// The next step, given what is in flight and whether a notification came since the last
    /// search.
    mutating func next(inFlight: Int, inFlightTo: (String) -> Int, notified: Bool, now: ContinuousClock.Instant) -> Step {
        let room = maxInFlight - inFlight
        guard room > 0 else { return .wait(pollInterval) }
        var limit = min(batchSize, room)
        // A notification hastens it, to `notifiedOtherWorkInterval`: new alerts may be for a
        // host with room. Not sooner: under a stream of writes notifications come every few
        // milliseconds, and each search reads past every deep host's backlog.
        let sinceSearch = lastOtherWorkSearch.map { now - $0 } ?? Self.otherWorkInterval
        let searchOtherWork = deep.isEmpty || sinceSearch >= Self.otherWorkInterval
            || (notified && sinceSearch >= Self.notifiedOtherWorkInterval)
        if !deep.isEmpty {
            let free = deep.reduce(0) { $0 + max(0, perHost - inFlightTo($1)) }
            if searchOtherWork {
                limit = min(limit, max(free, batchSize / 4))
            } else if free >= max(1, perHost / 4) {
                limit = min(limit, free)
            } else {
                return .wait(notified ? Self.notifiedOtherWorkInterval : Self.otherWorkInterval)
            }
        }
        if searchOtherWork { lastOtherWorkSearch = now }
        return .claim(limit: limit, searchesOtherWork: searchOtherWork)
    }

    /// A claim of `limit` came back with `count` alerts. `saturated` were the hosts left out of
    /// it (full); `excess` the hosts of alerts claimed beyond their places, given back.
    mutating func claimed(_ count: Int, limit: Int, saturated: [String], excess: [String]) {
        failures = 0
        if count < limit {
            // The due work is all out: no host is deep now but those that were full.
            deep = deep.filter { saturated.contains($0) }
        }
        if count > 0 {
            deep.formUnion(saturated)
            deep.formUnion(excess)
        }
    }

    /// Whether to let the waiting lock go after a claim of `count`: a backlog, where claims follow
    /// one another without a pause and notifications would only slow the writers.
    mutating func releasesWaitingLock(afterClaiming count: Int) -> Bool {
        guard holdingWaitingLock && count >= Self.backlogClaim else { return false }
        holdingWaitingLock = false
        return true
    }

    /// The claims connection was made again: the old session's waiting lock is gone with it.
    mutating func sessionReplaced() {
        holdingWaitingLock = false
    }

    /// What came of trying to take the waiting lock before sleeping.
    enum WaitingLockAttempt {
        /// This session holds it: writers notify from now on.
        case taken
        /// A writer's transaction that queued an alert without notifying is still open.
        case writerOpen
        /// Another instance holds it, so writers notify.
        case heldElsewhere
    }

    /// What to do when a claim found nothing due.
    enum Idle: Equatable {
        /// Try the waiting lock first (`waitingLock(_:)` says what next).
        case takeWaitingLock
        /// Sleep (`sleep(inFlight:nextDue:)` says how long).
        case sleep
    }

    var idle: Idle { holdingWaitingLock ? .sleep : .takeWaitingLock }

    /// What to do after trying the waiting lock.
    enum AfterWaitingLock: Equatable {
        /// Writers that queued alerts without notifying have committed: one more claim sees
        /// them, and from now on writers notify.
        case claimAgain
        /// A writer's transaction is open: look again after this wait.
        case wait(Duration)
        /// Sleep as usual (`sleep(inFlight:nextDue:)`).
        case sleep
    }

    mutating func waitingLock(_ attempt: WaitingLockAttempt) -> AfterWaitingLock {
        switch attempt {
        case .taken:
            holdingWaitingLock = true
            return .claimAgain
        case .writerOpen:
            return .wait(Self.unnotifiedPollInterval)
        case .heldElsewhere:
            return .sleep
        }
    }

    /// Whether `sleep` needs the time until the next due alert: only with nothing in flight.
    func needsNextDue(inFlight: Int) -> Bool { inFlight == 0 }

    /// How long to sleep with nothing due: with deliveries out, their end is the next thing to
    /// happen; else the next due alert (`nextDue`, at most the poll interval). While holding
    /// the waiting lock, at most `waitingLockCheckInterval`.
    func sleep(inFlight: Int, nextDue: Duration?) -> Duration {
        let wait = inFlight > 0 ? (deep.isEmpty ? pollInterval : Self.otherWorkInterval) : min(nextDue ?? pollInterval, pollInterval)
        return holdingWaitingLock ? min(wait, Self.waitingLockCheckInterval) : wait
    }

    /// A database call failed: how long to wait before the next.
    mutating func failed() -> Duration {
        failures += 1
        return Self.databaseRetry.delay(attempt: failures)
    }
}
