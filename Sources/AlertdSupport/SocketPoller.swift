import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// poll(2) over a set of descriptors and a wake-up pipe that any thread may write: the wait at the
/// heart of every loop that serves sockets on a thread of its own (the status server, the
/// bench's loopback servers, the LISTEN connection). A wake-up stays pending until the poller
/// is gone, so a loop that was woken to stop sees it at every later wait.
public final class SocketPoller: @unchecked Sendable {
    // Invariant: both ends of the pipe stay open until deinit, so `wake()` may write at any time
    // while the poller exists; only the loop's thread calls `wait`.
    private let wakeRead: Int32
    private let wakeWrite: Int32

    public init() throws(ListeningSocket.Failure) {
        let pipe = try ListeningSocket.wakePipe()
        wakeRead = pipe.read
        wakeWrite = pipe.write
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    /// Makes the current and every later `wait` return at once, woken. From any thread.
    public func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    /// Whether `wake()` was called, without waiting.
    public var isWoken: Bool {
        var entry = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0
    }

    /// What a wait found.
    public struct Ready: Sendable {
        /// `wake()` was called.
        public let woken: Bool
        /// The descriptors that are ready, with what they are ready for (POLLIN, POLLOUT, POLLHUP, ...).
        public let events: [(fd: Int32, events: Int16)]
    }

    /// The poller's own entry, first in the array a hot loop passes to `wait(_:timeout:)`.
    public var wakeEntry: pollfd { pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0) }

    /// The same wait over an array the caller keeps between waits (no allocation per wait):
    /// `entries` starts with `wakeEntry`, then the caller's descriptors, whose `revents` are set.
    /// Returns whether `wake()` was called.
    public func wait(_ entries: inout [pollfd], timeout: Duration?) -> Bool {
        precondition(entries.first?.fd == wakeRead, "the entries start with the poller's wakeEntry")
        let result = poll(&entries, nfds_t(entries.count), timeout.map(Self.milliseconds) ?? -1)
        if result <= 0 {
            for index in entries.indices { entries[index].revents = 0 }
            return false
        }
        return entries[0].revents != 0
    }

    /// A timeout for poll(2): whole milliseconds, rounded up (so that a wait for less than a
    /// millisecond does not spin), at least 0.
    public static func milliseconds(_ timeout: Duration) -> Int32 {
        let (seconds, attoseconds) = timeout.components
        guard seconds >= 0 else { return 0 }
        let total = seconds.multipliedReportingOverflow(by: 1000)
        guard !total.overflow else { return Int32.max }
        return Int32(clamping: total.partialValue + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }

    /// Waits up to `timeout` (nil: until something happens) for `interest`: each descriptor with
    /// the events it waits for. An interrupted wait returns with nothing ready.
    public func wait(_ interest: [(fd: Int32, events: Int16)], timeout: Duration?) -> Ready {
        var entries = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        entries += interest.map { pollfd(fd: $0.fd, events: $0.events, revents: 0) }
        let milliseconds = timeout.map(Self.milliseconds) ?? -1
        let result = poll(&entries, nfds_t(entries.count), milliseconds)
        guard result > 0 else { return Ready(woken: false, events: []) }
        return Ready(woken: entries[0].revents != 0, events: entries.dropFirst().filter { $0.revents != 0 }.map { ($0.fd, $0.revents) })
    }
}

