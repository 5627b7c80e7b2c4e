import Foundation

/// Outcomes waiting to be recorded, handed from the deliveries to the recorder.
final class OutcomeQueue: @unchecked Sendable {
    // Invariant: `buffer`, `waiter` and `closed` are read and written with `lock` held.
    private let lock = NSLock()
    private var buffer: [AttemptOutcome] = []
    private var waiter: CheckedContinuation<Void, Never>?
    private var closed = false

    func push(_ outcomes: [AttemptOutcome]) {
        lock.lock()
        buffer += outcomes
        let waiter = self.waiter
        self.waiter = nil
        lock.unlock()
        waiter?.resume()
    }

    /// No more outcomes will come; `next` returns nil once the buffer is empty.
    func close() {
        lock.lock()
        closed = true
        let waiter = self.waiter
        self.waiter = nil
        lock.unlock()
        waiter?.resume()
    }

    /// Up to `max` outcomes, waiting for the first; nil when closed and empty. One reader only.
    func next(max: Int) async -> [AttemptOutcome]? {
        while true {
            let taken: [AttemptOutcome]? = lock.withLock {
                if !buffer.isEmpty {
                    let batch = Array(buffer.prefix(max))
                    buffer.removeFirst(batch.count)
                    return batch
                }
                return closed ? [] : nil
            }
            if let taken { return taken.isEmpty ? nil : taken }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                lock.lock()
                if !buffer.isEmpty || closed {
                    lock.unlock()
                    continuation.resume()
                } else {
                    waiter = continuation
                    lock.unlock()
                }
            }
        }
    }
}
