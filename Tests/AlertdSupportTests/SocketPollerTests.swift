import AlertdSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The wait every socket-serving thread shares: readiness, timeouts and the wake-up.
@Suite struct SocketPollerTests {
    @Test func reportsAReadableDescriptorAndTimesOutOtherwise() throws {
        let poller = try SocketPoller()
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        let quiet = poller.wait([(ends[0], Int16(POLLIN))], timeout: .milliseconds(20))
        #expect(!quiet.woken && quiet.events.isEmpty)
        var byte: UInt8 = 7
        #expect(write(ends[1], &byte, 1) == 1)
        let ready = poller.wait([(ends[0], Int16(POLLIN))], timeout: .seconds(60))
        #expect(!ready.woken)
        #expect(ready.events.map(\.fd) == [ends[0]])
    }

    @Test func aWakeFromAnotherThreadEndsTheWaitAndStaysPending() async throws {
        let poller = try SocketPoller()
        #expect(!poller.isWoken)
        // The wait blocks its thread: a thread of its own, not the concurrency pool.
        let waited = OneTimeResult<SocketPoller.Ready>()
        Thread { waited.set(poller.wait([], timeout: .seconds(120))) }.start()
        try await Task.sleep(for: .milliseconds(20))
        poller.wake()
        #expect(await waited.value.woken)
        #expect(poller.isWoken)
        // Pending: a later wait returns at once, woken.
        #expect(poller.wait([], timeout: .seconds(120)).woken)
        var entries = [poller.wakeEntry]
        #expect(poller.wait(&entries, timeout: .seconds(120)))
    }

    @Test func timeoutsRoundUpToWholeMilliseconds() {
        #expect(SocketPoller.milliseconds(.microseconds(1)) == 1)
        #expect(SocketPoller.milliseconds(.seconds(2)) == 2000)
        #expect(SocketPoller.milliseconds(.seconds(-1)) == 0)
        #expect(SocketPoller.milliseconds(.seconds(Int64.max / 2)) == Int32.max)
    }
}
