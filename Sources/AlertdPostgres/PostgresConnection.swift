import AlertdSupport
import Logging

/// A connection to PostgreSQL for async code.
///
/// Every libpq call runs on the connection's own thread, never on Swift's cooperative pool; a
/// call suspends its task until the answer comes. Calls run one at a time, in order. Cancelling
/// the task that waits for a call asks the server to cancel the statement running for it, even
/// one that has not reached the server yet.
public final class PostgresConnection: Sendable {
    private let worker: BlockingWorker
    private let session: SessionBox
    public let connectionString: PostgresConnectionString
    /// The process ID of the server backend serving this connection when it was opened.
    public let backendPID: Int32

    private init(worker: BlockingWorker, session: SessionBox, connectionString: PostgresConnectionString, backendPID: Int32) {
        self.worker = worker
        self.session = session
        self.connectionString = connectionString
        self.backendPID = backendPID
    }

    deinit {
        let session = self.session
        worker.submit { session.close() }
        worker.shutdown()
    }

    /// Opens a connection on a new thread named `alertd-postgres`.
    public static func connect(_ connectionString: PostgresConnectionString, logger: Logger) async throws -> PostgresConnection {
        let worker = BlockingWorker(name: "alertd-postgres")
        let flag = CancellationFlag()
        do {
            let session = try await withTaskCancellationHandler {
                try await worker.run {
                    SessionBox(try PostgresSession.open(connectionString, cancellation: flag, logger: logger))
                }
            } onCancel: {
                flag.cancel()
            }
            let pid = try await worker.run { session.session?.backendPID ?? 0 }
            logger.debug("connected to PostgreSQL", metadata: [
                LogKey.database: "\(connectionString.description)",
                LogKey.backendPID: "\(pid)",
            ])
            return PostgresConnection(worker: worker, session: session, connectionString: connectionString, backendPID: pid)
        } catch {
            worker.shutdown()
            throw error
        }
    }

    /// Opens a connection, trying again with `backoff` until it succeeds, `attempts` have failed,
    /// or the task is cancelled.
    public static func connect(
        _ connectionString: PostgresConnectionString,
        retrying backoff: Backoff,
        attempts: Int = .max,
        logger: Logger
    ) async throws -> PostgresConnection {
        var attempt = 0
        while true {
            do {
                return try await connect(connectionString, logger: logger)
            } catch let error as PostgresError where error.code == .connectionFailed && !Task.isCancelled {
                attempt += 1
                if attempt >= attempts { throw error }
                let delay = backoff.delay(attempt: attempt)
                logger.warning("cannot connect to PostgreSQL; trying again", metadata: [
                    LogKey.error: "\(error)",
                    LogKey.retryInSeconds: "\(delay.seconds)",
                ])
                try await Task.sleep(for: delay)
            }
        }
    }

    /// Runs `body` with the session on the connection's thread.
    public func withSession<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        let session = self.session
        let flag = CancellationFlag()
        do {
            return try await withTaskCancellationHandler {
                try await worker.run {
                    guard let active = session.session else {
                        throw PostgresError(.closed, "The connection has been closed.")
                    }
                    active.cancellation = flag
                    defer { active.cancellation = nil }
                    return try body(active)
                }
            } onCancel: {
                flag.cancel()
            }
        } catch is BlockingWorkerStopped {
            throw PostgresError(.closed, "The connection has been closed.")
        }
    }

    /// Runs `body` in a transaction on the connection's thread: committed if it returns, rolled
    /// back if it throws. Nothing else runs on the connection meanwhile.
    public func withTransaction<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        try await withSession { session in try session.transaction(body) }
    }

    /// Runs one statement with `$1, $2, ...` parameters.
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> PostgresRows {
        try await withSession { session in try session.query(sql, parameters) }
    }

    /// Runs one statement prepared once on this connection (see `PostgresSession.preparedQuery`).
    @discardableResult
    public func preparedQuery(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) async throws -> PostgresRows {
        try await withSession { session in try session.preparedQuery(sql, parameters) }
    }

    /// Runs SQL text that may hold several statements and no parameters.
    @discardableResult
    public func execute(_ script: String) async throws -> PostgresRows {
        try await withSession { session in try session.execute(script) }
    }

    /// Runs `settings` (SET statements) now and on every connection made again after a break.
    public func keepSessionSettings(_ settings: String) async throws {
        try await withSession { session in
            session.sessionSettings = settings
            _ = try session.execute(settings)
        }
    }

    /// Calls `body` each time the connection is found broken and made again (on its thread).
    public func onReconnect(_ body: @escaping @Sendable () -> Void) async throws {
        try await withSession { session in session.onReconnect = body }
    }

    /// Closes the connection; later calls fail with `PostgresError.Code.closed`.
    public func close() async {
        let session = self.session
        _ = try? await worker.run { session.close() }
        worker.shutdown()
    }
}

/// Holds the session for the worker thread. Only that thread touches `session`.
final class SessionBox: @unchecked Sendable {
    private(set) var session: PostgresSession?

    init(_ session: PostgresSession) {
        self.session = session
    }

    func close() {
        session = nil
    }
}

/// Metadata keys of alertd's PostgreSQL log messages.
public enum LogKey {
    public static let database = "db"
    public static let backendPID = "db.backend_pid"
    public static let channel = "db.channel"
    public static let error = "error"
    public static let retryInSeconds = "retry_in_s"
}
