import Foundation

/// Holds the dispatcher back until the LISTEN connection has shown that alertd's sessions are
/// its own (`PostgresSessionCheck`): behind a pooler in transaction mode nothing is claimed,
/// so nothing is delivered that could not be recorded.
final class SessionGate: @unchecked Sendable {
    enum State: Equatable {
        case unchecked
        case open
        case refused(String)
    }

    // Invariant: `current` is read and written with `lock` held.
    private let lock = NSLock()
    private var current = State.unchecked

    var state: State { lock.withLock { current } }

    /// The session is alertd's own (or could not be checked and nothing says otherwise).
    func open() {
        lock.withLock { if current == .unchecked { current = .open } }
    }

    func refuse(_ message: String) {
        lock.withLock { current = .refused(message) }
    }
}
