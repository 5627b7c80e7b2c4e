import Foundation

/// A value set once, by whichever comes first (a worker thread's result, a cancellation's
/// stand-in): tasks wait for it without holding a thread of the pool; later sets are ignored.
public final class OneTimeResult<Value: Sendable>: @unchecked Sendable {
    // Invariant: `stored` and `waiters` are read and written with `lock` held.
    private let lock = NSLock()
    private var stored: Value?
    private var waiters: [CheckedContinuation<Value, Never>] = []

    public init() {}

    /// Whether the value was set.
    public var isSet: Bool { lock.withLock { stored != nil } }

    /// Sets the value if none was set; returns whether this call set it.
    @discardableResult
    public func set(_ value: Value) -> Bool {
        lock.lock()
        guard stored == nil else {
            lock.unlock()
            return false
        }
        stored = value
        let waiters = self.waiters
        self.waiters = []
        lock.unlock()
        waiters.forEach { $0.resume(returning: value) }
        return true
    }

    /// The value, once set.
    public var value: Value {
        get async {
            await withCheckedContinuation { continuation in
                lock.lock()
                if let stored {
                    lock.unlock()
                    continuation.resume(returning: stored)
                } else {
                    waiters.append(continuation)
                    lock.unlock()
                }
            }
        }
    }
}
