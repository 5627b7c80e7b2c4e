@testable import AlertdKit
import Foundation
import Testing

/// The message limit's arithmetic, without a database.
@Suite struct MessageLimitsTests {
    static let a = UUID(uuidString: "00000000-0000-0000-0000-0000000000a1")!
    static let b = UUID(uuidString: "00000000-0000-0000-0000-0000000000b1")!

    static func alert(_ integration: UUID?, channel: Channel = .webhook, origin: Origin = .trigger, attempt: Int = 1, limit: Int? = nil) -> ClaimedAlert {
        var alert = ClaimedAlert(
            id: UUID(), type: .failure, channel: channel, origin: origin, recipients: ["https://hooks.example.com/x"], attempt: attempt, maxAttempts: 10,
            createdAt: nil, integration: integration.map { .init(id: $0, name: "Paycom", type: "paycom", environment: "production", tenantID: UUID()) }, sync: nil
        )
        alert.messageLimit = limit
        return alert
    }

    static func limits(_ limit: Int?, window: Duration = .seconds(3600)) -> MessageLimits {
        let limits = MessageLimits(settings: .init(limit: limit, window: window))
        limits.setAvailable(true)
        return limits
    }

    @Test func eachIntegrationAndChannelHasItsOwnCountAndThoseOverItAreHeld() throws {
        let limits = Self.limits(2)
        let at = Date(timeIntervalSince1970: 1_765_000_800) // 06:00:00 UTC
        let first = limits.admit([Self.alert(Self.a), Self.alert(Self.a), Self.alert(Self.a), Self.alert(Self.b), Self.alert(Self.a, channel: .email)], now: at)
        #expect(first.send.count == 4)
        #expect(first.held.count == 1)
        let held = try #require(first.held.first)
        #expect(held.limit == 2)
        #expect(held.windowStart == at)
        #expect(held.reason.hasPrefix("Held: Paycom reached its limit of 2 webhook messages in the 1h from 2025-12-06T06:00:00Z"), "\(held.reason)")
        // Later in the same hour: still over; the next hour counts afresh.
        #expect(limits.admit([Self.alert(Self.a)], now: at.addingTimeInterval(3599)).held.count == 1)
        #expect(limits.admit([Self.alert(Self.a)], now: at.addingTimeInterval(3600)).held.isEmpty)
    }

    @Test func retriesTestsNoticesAndAlertsWithoutAnIntegrationNeitherCountNorAreHeld() {
        let limits = Self.limits(1)
        let at = Date(timeIntervalSince1970: 1_765_000_800)
        let result = limits.admit([
            Self.alert(Self.a), Self.alert(Self.a, attempt: 2), Self.alert(Self.a, origin: .test), Self.alert(Self.a, origin: .limit), Self.alert(nil),
        ], now: at)
        #expect(result.send.count == 5 && result.held.isEmpty)
        #expect(limits.admit([Self.alert(Self.a)], now: at).held.count == 1)
    }

    @Test func anIntegrationsOwnLimitWinsAndOffHoldsNothing() {
        let limits = Self.limits(1)
        let at = Date(timeIntervalSince1970: 1_765_000_800)
        #expect(limits.admit((0..<5).map { _ in Self.alert(Self.a, limit: 3) }, now: at).held.count == 2)
        #expect(limits.admit((0..<5).map { _ in Self.alert(Self.b, limit: Int.max) }, now: at).held.isEmpty)
        #expect(Self.limits(nil).admit((0..<500).map { _ in Self.alert(Self.a) }, now: at).held.isEmpty)
        #expect(IntegrationOverrides.limit("off") == Int.max && IntegrationOverrides.limit(" 25 ") == 25)
        #expect(IntegrationOverrides.limit("0") == nil && IntegrationOverrides.limit("lots") == nil)
    }

    @Test func untilTheSchemaCanRecordAHeldAlertNothingIsHeldButEverythingCounts() {
        let limits = MessageLimits(settings: .init(limit: 1, window: .seconds(60)))
        let at = Date(timeIntervalSince1970: 1_765_000_800)
        #expect(limits.admit([Self.alert(Self.a), Self.alert(Self.a)], now: at).held.isEmpty)
        limits.setAvailable(true)
        #expect(limits.admit([Self.alert(Self.a)], now: at).held.count == 1)
    }

    @Test func windowsAreAlignedToTheClock() {
        let limits = Self.limits(1, window: .seconds(600))
        #expect(limits.windowStart(Date(timeIntervalSince1970: 1_765_001_399)) == Date(timeIntervalSince1970: 1_765_000_800))
        #expect(limits.windowStart(Date(timeIntervalSince1970: 1_765_001_400)) == Date(timeIntervalSince1970: 1_765_001_400))
    }
}
