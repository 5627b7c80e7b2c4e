import Foundation

/// Wakes the dispatcher: a notification arrived, the listener reconnected, or shutdown began.
/// Signals while nobody waits are kept (as one), so none is lost between two waits.
final class WakeSignal: @unchecked Sendable {
    // Invariant: `pending`, `waiter`, `notifiedFlag` and `sessionReplacedFlag` are read and written with `lock` held.
    private let lock = NSLock()
    private var pending = false
    private var waiter: CheckedContinuation<Void, Never>?
    private var notifiedFlag = false
    private var sessionReplacedFlag = false

    /// A signal from outside (a notification, a reconnect): new work may be for any host.
    func notify() {
        lock.withLock { notifiedFlag = true }
        signal()
    }

    /// Whether `notify()` came since the last `clearNotified()`.
    var notified: Bool { lock.withLock { notifiedFlag } }

    func clearNotified() {
        lock.withLock { notifiedFlag = false }
    }

    /// The claims connection was made again: what its old session held (the waiting lock) is
    /// gone, and the dispatcher should look at once.
    func sessionReplaced() {
        lock.withLock { sessionReplacedFlag = true }
        notify()
    }

    /// Whether `sessionReplaced()` came since the last call.
    func takeSessionReplaced() -> Bool {
        lock.withLock {
            defer { sessionReplacedFlag = false }
            return sessionReplacedFlag
        }
    }

    func signal() {
        lock.lock()
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume()
        } else {
            pending = true
            lock.unlock()
        }
    }

    /// Returns on a signal, or after `timeout`.
    func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                lock.lock()
                if Task.isCancelled {
                    // The wait is over (timed out): a signal kept for the next wait stays kept.
                    lock.unlock()
                    continuation.resume()
                } else if pending {
                    pending = false
                    lock.unlock()
                    continuation.resume()
                } else {
                    waiter = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            lock.lock()
            let waiter = self.waiter
            self.waiter = nil
            lock.unlock()
            waiter?.resume()
        }
    }
}
