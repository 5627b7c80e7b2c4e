import AlertdSupport
import CLibPQ
import Foundation

/// What a wait for a socket found.
enum SocketWaitResult {
    case ready
    case timedOut
    /// The waiter was told to stop (shutdown, a cancelled task): give up now.
    case stopped
}

/// Waits until `fd` is ready for `events` (POLLIN or POLLOUT), at most `timeout`.
typealias SocketWait = (_ fd: Int32, _ events: Int16, _ timeout: Duration) -> SocketWaitResult

/// Opens libpq connections without blocking inside libpq (`PQconnectStartParams` and
/// `PQconnectPoll`), so that the caller's wait decides how long a server that never answers may
/// take, and a shutdown ends the attempt at once. A pooler whose server is gone, or a half-open
/// TCP connection, holds `PQconnectdbParams` for as long as the pooler or the kernel likes.
enum PostgresConnector {
    /// A connection, or why there is none.
    enum Outcome {
        case connected(OpaquePointer)
        case failed(String)
        case stopped
    }

    /// The connect timeout when neither the connection string nor `PGCONNECT_TIMEOUT` sets one.
    static let defaultTimeout: Duration = .seconds(10)

    /// How long one connection attempt may take: the string's `connect_timeout`, else
    /// `PGCONNECT_TIMEOUT`, else 10 s. libpq ignores these when polled, so alertd applies them.
    static func timeout(for connectionString: PostgresConnectionString) -> Duration {
        let text = connectionString.value(of: "connect_timeout") ?? ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"]
        guard let text, let seconds = Int(text.trimmingCharacters(in: .whitespaces)), seconds > 0 else { return defaultTimeout }
        // libpq treats values below 2 as 2.
        return .seconds(max(seconds, 2))
    }

    static func connect(_ connectionString: PostgresConnectionString, wait: SocketWait) -> Outcome {
        guard let connection = start(connectionString) else { return .failed("out of memory") }
        guard PQstatus(connection) != CONNECTION_BAD else {
            defer { PQfinish(connection) }
            return .failed(PostgresSession.errorMessage(of: connection))
        }
        let timeout = timeout(for: connectionString)
        let deadline = ContinuousClock.now + timeout
        // libpq's rule: before the first call to PQconnectPoll, behave as if it asked to write.
        var state = PGRES_POLLING_WRITING
        while true {
            switch state {
            case PGRES_POLLING_OK:
                return .connected(connection)
            case PGRES_POLLING_READING, PGRES_POLLING_WRITING:
                let remaining = deadline - ContinuousClock.now
                guard remaining > .zero else {
                    PQfinish(connection)
                    return .failed("no answer from the server within \(timeout.seconds) s (connect_timeout)")
                }
                let events = Int16(state == PGRES_POLLING_READING ? POLLIN : POLLOUT)
                switch wait(PQsocket(connection), events, remaining) {
                case .stopped:
                    PQfinish(connection)
                    return .stopped
                case .timedOut:
                    continue
                case .ready:
                    state = PQconnectPoll(connection)
                }
            default:
                defer { PQfinish(connection) }
                return .failed(PostgresSession.errorMessage(of: connection))
            }
        }
    }

    /// Starts a connection with the application name `alertd` unless the string names another.
    private static func start(_ connectionString: PostgresConnectionString) -> OpaquePointer? {
        let keywords = ["fallback_application_name", "dbname"]
        let values = ["alertd", connectionString.conninfo]
        let keywordPointers = keywords.map { strdup($0) } + [nil]
        let valuePointers = values.map { strdup($0) } + [nil]
        defer {
            keywordPointers.forEach { free($0) }
            valuePointers.forEach { free($0) }
        }
        return keywordPointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordBuffer in
            valuePointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { valueBuffer in
                PQconnectStartParams(keywordBuffer.baseAddress, valueBuffer.baseAddress, 1)
            }
        }
    }

    /// A wait in slices of 50 ms that stops when `stop` says so: for a thread that has no
    /// wake-up pipe, only a flag to look at.
    static func slicedWait(stop: @escaping () -> Bool) -> SocketWait {
        { fd, events, timeout in
            let deadline = ContinuousClock.now + timeout
            while true {
                if stop() { return .stopped }
                let remaining = deadline - ContinuousClock.now
                guard remaining > .zero else { return .timedOut }
                var entry = pollfd(fd: fd, events: events, revents: 0)
                let ready = poll(&entry, 1, min(50, SocketPoller.milliseconds(remaining)))
                if ready > 0 { return .ready }
                if ready < 0 && errno != EINTR { return .ready }  // let libpq see the error
            }
        }
    }
}
