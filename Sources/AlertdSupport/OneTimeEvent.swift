import Foundation

/// Something that happens once (a thread has ended): tasks wait for it without holding a thread
/// of the pool, and a wait after it happened returns at once.
public final class OneTimeEvent: @unchecked Sendable {
    // Invariant: `happened` and `waiters` are read and written with `lock` held.
    private let lock = NSLock()
    private var happened = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public var hasHappened: Bool { lock.withLock { happened } }

    /// Marks it happened and resumes every waiter.
    public func signal() {
        lock.lock()
        happened = true
        let waiters = self.waiters
        self.waiters = []
        lock.unlock()
        waiters.forEach { $0.resume() }
    }

    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if happened {
                lock.unlock()
                continuation.resume()
            } else {
                waiters.append(continuation)
                lock.unlock()
            }
        }
    }
}
