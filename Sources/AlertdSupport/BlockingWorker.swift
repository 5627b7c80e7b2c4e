import Foundation

/// One named thread that runs blocking jobs in order, off Swift's cooperative thread pool.
///
/// Every blocking C call (libpq, libcurl, libesmtp) runs on one of these; `run` suspends the calling task (it
/// does not block its thread) until the job is done. The thread starts with the first job and
/// ends after `shutdown()`, once the jobs already queued have run.
public final class BlockingWorker: @unchecked Sendable {
    // Invariant: `jobs`, `started` and `accepting` are read and written only with `condition` locked.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var started = false
    private var accepting = true
    private let name: String

    public init(name: String) {
        self.name = name
    }

    /// Queues a job; false if the worker has been shut down.
    @discardableResult
    public func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard accepting else { return false }
        jobs.append(job)
        if !started {
            started = true
            // Named from inside: on Linux a name set before start() is not applied, and the
            // thread would carry the name of the pool thread that created it.
            let thread = Thread { [self] in
                Self.nameCurrentThread(self.name)
                self.loop()
            }
            thread.start()
        }
        condition.signal()
        return true
    }

    /// Runs `body` on the worker's thread and returns its result to the calling task.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try Task.checkCancellation()
        return try await withCheckedThrowingContinuation { continuation in
            let queued = submit {
                continuation.resume(with: Result { try body() })
            }
            if !queued {
                continuation.resume(throwing: BlockingWorkerStopped(name: name))
            }
        }
    }

    /// Names the calling thread for Foundation and for the kernel (ps, top, gdb): on Linux,
    /// Foundation's setter does not reliably reach the kernel's name.
    public static func nameCurrentThread(_ name: String) {
        Thread.current.name = name
        if let file = fopen("/proc/thread-self/comm", "w") {
            fputs(String(name.prefix(15)), file)
            fclose(file)
        }
    }

    /// Stops accepting jobs; the thread exits once those already queued have run.
    public func shutdown() {
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

/// A job was submitted after `shutdown()`.
public struct BlockingWorkerStopped: Error, CustomStringConvertible {
    public let name: String
    public var description: String { "The \(name) thread has stopped." }
}
