import Dispatch
import Foundation

/// Tells long-running work to stop: on SIGTERM or SIGINT, or when asked.
public final class ShutdownSignal: @unchecked Sendable {
    // Invariant: `requested`, `observers` and `sources` are read and written with `lock` held.
    private let lock = NSLock()
    private var requested = false
    private var observers: [@Sendable () -> Void] = []
    private var sources: [DispatchSourceSignal] = []

    public init() {}

    public var isRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return requested
    }

    public func request() {
        lock.lock()
        guard !requested else { lock.unlock(); return }
        requested = true
        let observers = self.observers
        lock.unlock()
        observers.forEach { $0() }
    }

    /// Runs `observer` when shutdown is requested (at once if it already was).
    func onRequest(_ observer: @escaping @Sendable () -> Void) {
        lock.lock()
        if requested {
            lock.unlock()
            observer()
        } else {
            observers.append(observer)
            lock.unlock()
        }
    }

    /// Requests shutdown on SIGTERM and SIGINT.
    public func installSignalHandlers() {
        var mask = sigset_t()
        sigemptyset(&mask)
        for number in [SIGTERM, SIGINT] {
            // Handled through Dispatch, not by the default action that would end the process.
            signal(number, SIG_IGN)
            sigaddset(&mask, number)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.request() }
            source.resume()
            lock.lock()
            sources.append(source)
            lock.unlock()
        }
        // A parent may have started alertd with these signals blocked; the mask survives exec.
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
    }
}
