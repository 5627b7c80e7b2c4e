@testable import AlertdKit
import Testing

/// The dispatcher's judgement, without a database: how much to claim and when to wait.
@Suite struct ClaimPlannerTests {
    static func planner(batchSize: Int = 100, maxInFlight: Int = 512, perHost: Int = 128) -> ClaimPlanner {
        ClaimPlanner(batchSize: batchSize, maxInFlight: maxInFlight, perHost: perHost, pollInterval: .seconds(30))
    }

    @Test func claimsABatchOrTheRoomLeftInFlight() {
        var planner = Self.planner()
        let now = ContinuousClock.now
        #expect(planner.next(inFlight: 0, inFlightTo: { _ in 0 }, notified: false, now: now) == .claim(limit: 100, searchesOtherWork: true))
        #expect(planner.next(inFlight: 480, inFlightTo: { _ in 0 }, notified: false, now: now) == .claim(limit: 32, searchesOtherWork: true))
        #expect(planner.next(inFlight: 512, inFlightTo: { _ in 0 }, notified: false, now: now) == .wait(.seconds(30)))
    }

    @Test func aDeepHostsClaimsAreSizedToItsFreePlacesAndWaitForAQuarter() {
        var planner = Self.planner()
        let start = ContinuousClock.now
        #expect(planner.next(inFlight: 0, inFlightTo: { _ in 0 }, notified: false, now: start) == .claim(limit: 100, searchesOtherWork: true))
        // The claim came back full, with more for one host than it may have: that host is deep.
        planner.claimed(100, limit: 100, saturated: [], excess: ["slow.example.com"])
        #expect(planner.deep == ["slow.example.com"])
        // Full, and too soon to search for other work: wait.
        let soon = start + .milliseconds(10)
        #expect(planner.next(inFlight: 128, inFlightTo: { _ in 128 }, notified: false, now: soon) == .wait(ClaimPlanner.otherWorkInterval))
        // A notification shortens that wait.
        #expect(planner.next(inFlight: 128, inFlightTo: { _ in 128 }, notified: true, now: soon) == .wait(ClaimPlanner.notifiedOtherWorkInterval))
        // A quarter of its places free: claim exactly those, without searching for other work.
        #expect(planner.next(inFlight: 96, inFlightTo: { _ in 96 }, notified: false, now: soon) == .claim(limit: 32, searchesOtherWork: false))
        // Fewer than a quarter: wait.
        #expect(planner.next(inFlight: 100, inFlightTo: { _ in 100 }, notified: false, now: soon) == .wait(ClaimPlanner.otherWorkInterval))
    }

    @Test func otherHostsWorkIsSearchedForOnlyEveryInterval() {
        var planner = Self.planner()
        let start = ContinuousClock.now
        _ = planner.next(inFlight: 0, inFlightTo: { _ in 0 }, notified: false, now: start)
        planner.claimed(100, limit: 100, saturated: [], excess: ["slow.example.com"])
        let later = start + ClaimPlanner.otherWorkInterval
        // Every place of the deep host taken: the search is for a quarter batch at least.
        #expect(planner.next(inFlight: 128, inFlightTo: { _ in 128 }, notified: false, now: later) == .claim(limit: 25, searchesOtherWork: true))
        // Just searched: not again at once, even when notified...
        #expect(planner.next(inFlight: 128, inFlightTo: { _ in 128 }, notified: true, now: later + .milliseconds(10)) == .wait(ClaimPlanner.notifiedOtherWorkInterval))
        // ...but a notification allows it after the shorter interval.
        #expect(planner.next(inFlight: 128, inFlightTo: { _ in 128 }, notified: true, now: later + ClaimPlanner.notifiedOtherWorkInterval) == .claim(limit: 25, searchesOtherWork: true))
    }

    @Test func aShortClaimMeansNoHostIsDeepButThoseStillFull() {
        var planner = Self.planner()
        planner.claimed(100, limit: 100, saturated: [], excess: ["a.example.com", "b.example.com"])
        planner.claimed(10, limit: 25, saturated: ["b.example.com"], excess: [])
        #expect(planner.deep == ["b.example.com"])
        planner.claimed(0, limit: 25, saturated: [], excess: [])
        #expect(planner.deep.isEmpty)
    }

    @Test func withNothingDueTheWaitingLockIsTakenBeforeSleeping() {
        var planner = Self.planner()
        #expect(planner.idle == .takeWaitingLock)
        #expect(planner.waitingLock(.writerOpen) == .wait(ClaimPlanner.unnotifiedPollInterval))
        #expect(!planner.holdingWaitingLock)
        #expect(planner.waitingLock(.heldElsewhere) == .sleep)
        #expect(planner.waitingLock(.taken) == .claimAgain)
        #expect(planner.holdingWaitingLock && planner.idle == .sleep)
        // Holding it, sleeps are at most the check interval; the next due alert shortens them.
        #expect(planner.sleep(inFlight: 0, nextDue: nil) == ClaimPlanner.waitingLockCheckInterval)
        #expect(planner.sleep(inFlight: 0, nextDue: .seconds(2)) == .seconds(2))
        // A new claims session lost it.
        planner.sessionReplaced()
        #expect(planner.idle == .takeWaitingLock)
        #expect(planner.sleep(inFlight: 0, nextDue: nil) == .seconds(30))
        #expect(planner.sleep(inFlight: 0, nextDue: .seconds(90)) == .seconds(30))
        #expect(planner.needsNextDue(inFlight: 0) && !planner.needsNextDue(inFlight: 3))
    }

    @Test func aBacklogLetsTheWaitingLockGo() {
        var planner = Self.planner()
        _ = planner.waitingLock(.taken)
        let small = planner.releasesWaitingLock(afterClaiming: ClaimPlanner.backlogClaim - 1)
        #expect(!small)
        let backlog = planner.releasesWaitingLock(afterClaiming: ClaimPlanner.backlogClaim)
        #expect(backlog)
        #expect(!planner.holdingWaitingLock)
        let again = planner.releasesWaitingLock(afterClaiming: 100)
        #expect(!again)
    }

    @Test func failedDatabaseCallsBackOffAndASuccessResetsThat() {
        var planner = Self.planner()
        let first = planner.failed()
        var last = first
        for _ in 0..<20 { last = planner.failed() }
        #expect(first <= .milliseconds(150))
        #expect(last >= .seconds(3) && last <= .seconds(6))
        planner.claimed(0, limit: 100, saturated: [], excess: [])
        #expect(planner.failed() <= .milliseconds(150))
    }
}
