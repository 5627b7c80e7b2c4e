import Foundation

/// One named thread that runs blocking jobs in order, off Swift's cooperative thread pool.
///
/// Every blocking libpq call of a connection runs here; `run` suspends the calling task (it
/// does not block its thread) until the job is done. The thread starts with the first job and
/// ends after `shutdown()`, once the jobs already queued have run.
final class BlockingWorker: @unchecked Sendable {
    // Invariant: `jobs`, `started` and `accepting` are read and written only with `condition` locked.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var started = false
    private var accepting = true
    private let name: String

    init(name: String) {
        self.name = name
    }

    /// Queues a job; false if the worker has been shut down.
    @discardableResult
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard accepting else { return false }
        jobs.append(job)
        if !started {
            started = true
            // Named from inside: on Linux a name set before start() is not applied, and the
            // thread would carry the name of the pool thread that created it.
            let thread = Thread { [self] in
                Thread.current.name = self.name
                self.loop()
            }
            thread.start()
        }
        condition.signal()
        return true
    }

    /// Runs `body` on the worker's thread and returns its result to the calling task.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try Task.checkCancellation()
        return try await withCheckedThrowingContinuation { continuation in
            let queued = submit {
                continuation.resume(with: Result { try body() })
            }
            if !queued {
                continuation.resume(throwing: PostgresError(.closed, "The connection has been closed."))
            }
        }
    }

    /// Stops accepting jobs; the thread exits once those already queued have run.
    func shutdown() {
        condition.lock()
        accepting = false
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && accepting {
                condition.wait()
            }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
