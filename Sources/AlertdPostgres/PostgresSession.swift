import AlertdSupport
import CLibPQ
import Foundation
import Logging

/// A libpq connection used synchronously, from one thread at a time.
///
/// Every call blocks its thread until the server answers, so a session lives on a
/// ``BlockingWorker`` thread and is reached from async code through ``PostgresConnection``, which
/// hands it to closures that run there (`withTransaction`, `withSession`).
public final class PostgresSession {
    private var connection: OpaquePointer?
    public let connectionString: PostgresConnectionString
    private let cancelHandle = CancelHandle()
    /// NOTICE and WARNING messages from the server since the last `takeNotices()`, at most 1,000.
    private var notices: [String] = []
    /// True inside `transaction`: a connection lost there must fail the transaction, not be
    /// replaced by a new one that would run the remaining statements outside it.
    private var inTransaction = false
    /// Called after a broken connection has been made again.
    var onReconnect: (@Sendable () -> Void)?
    /// SET statements run on every connection this session makes, after its own.
    var sessionSettings: String?
    /// Statements prepared on this connection, by their text.
    private var prepared: [String: String] = [:]
    /// False once named statements were found not to stay on this session (a pooler in
    /// transaction mode runs each on whichever server connection is free): every statement is
    /// then sent unnamed, parsed each time.
    private(set) var preparesStatements = true
    /// Where the session says what it decided on its own (giving up prepared statements, say).
    var logger: Logger?
    /// Why the connection was given up without an answer, for the error that follows.
    private var abandonedBecause: String?

    private init(connectionString: PostgresConnectionString) {
        self.connectionString = connectionString
    }

    deinit {
        cancelHandle.replace(with: nil)
        if let connection { PQfinish(connection) }
    }

    /// Opens a connection; blocks until the server accepts it, the connect timeout passes, or
    /// `cancellation` is set.
    static func open(_ connectionString: PostgresConnectionString, cancellation: CancellationFlag? = nil, logger: Logger? = nil) throws(PostgresError) -> PostgresSession {
        let session = PostgresSession(connectionString: connectionString)
        session.logger = logger
        session.cancellation = cancellation
        defer { session.cancellation = nil }
        try session.connect()
        return session
    }

    /// The process ID of the server backend serving this session.
    public var backendPID: Int32 {
        connection.map { PQbackendPID($0) } ?? 0
    }

    var isConnected: Bool {
        connection.map { PQstatus($0) == CONNECTION_OK } ?? false
    }

    private func connect() throws(PostgresError) {
        if let connection {
            PQfinish(connection)
            self.connection = nil
        }
        abandonedBecause = nil
        let flag = cancellation
        let connection: OpaquePointer
        switch PostgresConnector.connect(connectionString, wait: PostgresConnector.slicedWait { flag?.isCancelled == true }) {
        case .connected(let made):
            connection = made
        case .stopped:
            throw PostgresError(.cancelled, "Connecting to PostgreSQL was abandoned: the caller stopped waiting.")
        case .failed(let reason):
            throw PostgresError(
                .connectionFailed,
                "Cannot connect to PostgreSQL (\(connectionString.redactor.redact(connectionString.description))): \(connectionString.redactor.redact(reason))"
            )
        }
        self.connection = connection
        prepared = [:]
        let context = Unmanaged.passUnretained(self).toOpaque()
        // The session owns the connection and frees it in deinit, so it outlives every notice.
        PQsetNoticeProcessor(connection, { context, message in
            guard let context, let message else { return }
            let session = Unmanaged<PostgresSession>.fromOpaque(context).takeUnretainedValue()
            session.recordNotice(String(cString: message))
        }, context)
        cancelHandle.replace(with: PQgetCancel(connection))
        do {
            // Timestamps without a time zone are read as UTC; keep the session's zone UTC to match.
            _ = try execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'")
            if let sessionSettings { _ = try execute(sessionSettings) }
        } catch where error.code != .cancelled {
            // A pooler accepts the login and fails the first statement when it cannot reach the
            // server ("server login has been failing"): the connection was not made after all.
            cancelHandle.replace(with: nil)
            PQfinish(connection)
            self.connection = nil
            throw PostgresError(
                .connectionFailed,
                "Cannot connect to PostgreSQL (\(connectionString.redactor.redact(connectionString.description))): \(error.message)",
                sqlState: error.sqlState
            )
        }
    }

    private func recordNotice(_ message: String) {
        guard notices.count < 1_000 else { return }
        notices.append(message.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The server's notices since the last call, oldest first.
    public func takeNotices() -> [String] {
        defer { notices.removeAll() }
        return notices
    }

    /// Makes sure the connection is usable, reconnecting once if it broke.
    func ensureConnected() throws(PostgresError) {
        guard !isConnected else { return }
        if inTransaction {
            throw PostgresError(.connectionLost, "The connection to PostgreSQL was lost during a transaction; nothing in it was committed.")
        }
        try connect()
        onReconnect?()
    }

    /// Runs one statement with `$1, $2, ...` parameters and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) throws(PostgresError) -> PostgresRows {
        try ensureConnected()
        let sent = Self.withTexts(of: parameters) { count, values in
            PQsendQueryParams(connection, sql, count, nil, values, nil, nil, 0)
        }
        let result = awaitResult(sent: sent)
        defer { PQclear(result) }
        return try rows(of: result)
    }

    /// Runs one statement like `query`, prepared on this connection the first time it is run
    /// and executed by name after that: the server parses and plans it once, not every time.
    /// For the statements a loop runs many times; the connection keeps each one until it closes.
    @discardableResult
    public func preparedQuery(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) throws(PostgresError) -> PostgresRows {
        try preparedQuery(sql, parameters, mayPrepareAgain: true)
    }

    private func preparedQuery(_ sql: String, _ parameters: [(any PostgresEncodable)?], mayPrepareAgain: Bool) throws(PostgresError) -> PostgresRows {
        guard preparesStatements else { return try query(sql, parameters) }
        try ensureConnected()
        let name: String
        if let existing = prepared[sql] {
            name = existing
        } else {
            name = "alertd_\(prepared.count + 1)"
            let result = awaitResult(sent: PQsendPrepare(connection, name, sql, Int32(parameters.count), nil))
            defer { PQclear(result) }
            do {
                _ = try rows(of: result)
            } catch where Self.statementsMixedUp(error) {
                return try unnamedFromNowOn(sql, parameters, after: error)
            }
            prepared[sql] = name
        }
        let sent = Self.withTexts(of: parameters) { count, values in
            PQsendQueryPrepared(connection, name, count, values, nil, nil, 0)
        }
        let result = awaitResult(sent: sent)
        defer { PQclear(result) }
        do {
            return try rows(of: result)
        } catch where Self.statementsMixedUp(error) {
            return try unnamedFromNowOn(sql, parameters, after: error)
        } catch where error.sqlState == "0A000" && mayPrepareAgain && !inTransaction {
            // "cached plan must not change result type": a migration changed a table under the
            // statement. Prepared again, once.
            _ = try? execute("DEALLOCATE \(name)")
            prepared[sql] = nil
            return try preparedQuery(sql, parameters, mayPrepareAgain: false)
        }
    }

    /// A named statement that is missing (26000), already there (42P05) or has other
    /// parameters (08P01 on a connection still up): the session's statements are not its own,
    /// as behind a pooler in transaction mode. Never a sign that the database is down.
    static func statementsMixedUp(_ error: PostgresError) -> Bool {
        guard error.code == .queryFailed, let state = error.sqlState else { return false }
        return state == "26000" || state == "42P05" || state == "08P01"
    }

    /// Gives up named statements for this session and runs `sql` unnamed: at once when no
    /// transaction is open (the failed statement did nothing), or else by failing the
    /// transaction, which its caller runs again.
    private func unnamedFromNowOn(_ sql: String, _ parameters: [(any PostgresEncodable)?], after error: PostgresError) throws(PostgresError) -> PostgresRows {
        preparesStatements = false
        prepared = [:]
        logger?.warning("prepared statements do not stay on this connection (a pooler in transaction mode?); sending every statement unnamed from now on", metadata: [
            LogKey.error: "\(error)",
            LogKey.backendPID: "\(backendPID)",
        ])
        guard !inTransaction else {
            var retry = error
            retry.message += " (named statements given up: the transaction can be run again)"
            throw retry
        }
        return try query(sql, parameters)
    }

    /// Parameters in libpq's text form (NULL as a null pointer), valid during `body`.
    private static func withTexts(of parameters: [(any PostgresEncodable)?], _ body: (Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32) -> Int32 {
        let texts = parameters.map { parameter -> UnsafeMutablePointer<CChar>? in
            guard let parameter, (parameter as? PostgresNullable)?.isNull != true else { return nil }
            return strdup(parameter.postgresText)
        }
        defer { texts.forEach { free($0) } }
        return texts.map { UnsafePointer($0) }.withUnsafeBufferPointer { buffer in
            body(Int32(texts.count), buffer.baseAddress)
        }
    }

    /// Runs SQL text that may hold several statements and no parameters (a migration file, say),
    /// and returns the last statement's rows, or the first error.
    @discardableResult
    public func execute(_ script: String) throws(PostgresError) -> PostgresRows {
        try ensureConnected()
        let result = awaitResult(sent: PQsendQuery(connection, script))
        defer { PQclear(result) }
        return try rows(of: result)
    }

    /// Set while a call from ``PostgresConnection`` runs; its task's cancellation shows here.
    var cancellation: CancellationFlag?

    /// Waits for the answer to a statement just sent, asking the server to cancel it if the
    /// caller's task is cancelled meanwhile. The request is repeated every second: one that
    /// reaches the server before the statement does is ignored there.
    private func awaitResult(sent: Int32) -> OpaquePointer? {
        guard sent == 1, let connection else { return nil }
        let socket = PQsocket(connection)
        var firstCancelRequest: ContinuousClock.Instant?
        var lastCancelRequest: ContinuousClock.Instant?
        while PQisBusy(connection) == 1 {
            if cancellation?.isCancelled == true {
                let now = ContinuousClock.now
                if let firstCancelRequest, now - firstCancelRequest > Self.abandonAfter {
                    abandon("PostgreSQL did not answer within \(Self.abandonAfter.seconds) s of a cancel request; the connection was closed")
                    return nil
                }
                if lastCancelRequest.map({ now - $0 > .seconds(1) }) ?? true {
                    cancelHandle.requestCancel()
                    firstCancelRequest = firstCancelRequest ?? now
                    lastCancelRequest = now
                }
            }
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, cancellation == nil ? -1 : 50)
            if ready < 0 && errno != EINTR { break }
            if ready > 0 && PQconsumeInput(connection) == 0 { break }
        }
        // A script gives one result per statement and stops at the first error: keep that
        // error, or else the last result.
        var last: OpaquePointer?
        var failure: OpaquePointer?
        while let result = PQgetResult(connection) {
            let status = PQresultStatus(result)
            if failure == nil && (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
                failure = result
            } else if failure != nil {
                PQclear(result)
            } else {
                PQclear(last)
                last = result
            }
        }
        if let failure {
            PQclear(last)
            return failure
        }
        return last
    }

    /// How long a cancelled statement may go unanswered before its connection is given up: a
    /// query queued in a pooler whose server is gone, a server that never answers, a half-open
    /// TCP connection. Shutdown must not wait on any of them.
    static let abandonAfter: Duration = .seconds(2)

    /// Closes the connection without waiting for the server; the next call connects anew.
    private func abandon(_ reason: String) {
        cancelHandle.replace(with: nil)
        if let connection { PQfinish(connection) }
        connection = nil
        prepared = [:]
        abandonedBecause = reason
        logger?.warning("abandoned a PostgreSQL connection", metadata: [LogKey.error: "\(reason)"])
    }

    private func rows(of result: OpaquePointer?) throws(PostgresError) -> PostgresRows {
        guard let result else {
            throw lostOrFailed()
        }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            break
        default:
            throw serverError(from: result)
        }
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var values: [[String?]] = []
        values.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var rowValues: [String?] = []
            rowValues.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    rowValues.append(nil)
                } else {
                    rowValues.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
            values.append(rowValues)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(columns: columns, values: values, affectedRows: affected)
    }

    private func serverError(from result: OpaquePointer) -> PostgresError {
        func field(_ code: UInt8) -> String? {
            PQresultErrorField(result, Int32(code)).map { String(cString: $0) }
        }
        guard let sqlState = field(UInt8(ascii: "C")) else {
            return lostOrFailed()
        }
        let redactor = connectionString.redactor
        let message = field(UInt8(ascii: "M")) ?? "the server reported an error"
        var error = PostgresError(
            .queryFailed,
            redactor.redact(message),
            sqlState: sqlState,
            detail: field(UInt8(ascii: "D")).map(redactor.redact),
            hint: field(UInt8(ascii: "H")).map(redactor.redact)
        )
        if sqlState == "57014" { error.code = .cancelled }
        // A protocol error on a connection still up (a statement sent to another server
        // connection by a pooler, say) is the statement's failure, not a lost connection.
        if (sqlState.hasPrefix("08") && !isConnected) || sqlState == "57P01" { error.code = .connectionLost }
        return error
    }

    private func lostOrFailed() -> PostgresError {
        if let abandonedBecause {
            return PostgresError(.connectionLost, abandonedBecause)
        }
        let reason = connection.map { Self.errorMessage(of: $0) } ?? "no connection"
        let code: PostgresError.Code = isConnected ? .queryFailed : .connectionLost
        return PostgresError(code, connectionString.redactor.redact(reason))
    }

    static func errorMessage(of connection: OpaquePointer) -> String {
        PQerrorMessage(connection).map { String(cString: $0) }?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown error"
    }

    /// Quotes an identifier (a channel or table name) for use in SQL text.
    public func quoteIdentifier(_ identifier: String) -> String {
        Self.quoteIdentifier(identifier)
    }

    static func quoteIdentifier(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws.
    public func transaction<T>(_ body: (PostgresSession) throws -> T) throws -> T {
        precondition(!inTransaction, "transactions do not nest")
        try execute("BEGIN")
        inTransaction = true
        defer { inTransaction = false }
        do {
            let value = try body(self)
            try execute("COMMIT")
            return value
        } catch {
            // The rollback must run even when the failure was a cancellation.
            let cancelled = cancellation
            cancellation = nil
            if isConnected { _ = try? execute("ROLLBACK") }
            cancellation = cancelled
            throw error
        }
    }
}

/// Tells a session that the task waiting for it was cancelled.
final class CancellationFlag: @unchecked Sendable {
    // Invariant: `cancelled` is read and written with `lock` held.
    private let lock = NSLock()
    private var cancelled = false

    func cancel() {
        lock.lock()
        cancelled = true
        lock.unlock()
    }

    var isCancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return cancelled
    }
}

/// Asks the server to cancel the statement a session is running. Used on the session's thread.
///
/// `PQcancel` opens a connection of its own and waits for the server to close it, with no
/// timeout: a server that never answers (frozen, or behind a pooler that holds the request)
/// would keep the session's thread there for good, and with it a shutdown. So each request is
/// sent from a short-lived thread of its own, one at a time per connection, and the session
/// goes on waiting, and gives the connection up when nothing answers (`abandonAfter`).
final class CancelHandle {
    private var current: CancelRequest?

    func replace(with newValue: OpaquePointer?) {
        current = newValue.map(CancelRequest.init)
    }

    func requestCancel() {
        current?.send()
    }
}

/// One connection's cancel key. It lives as long as the last thread that sends it.
final class CancelRequest: @unchecked Sendable {
    // Invariant: `pointer` is freed only in deinit; `sending` is read and written with `lock` held.
    private let pointer: OpaquePointer
    private let lock = NSLock()
    private var sending = false

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        PQfreeCancel(pointer)
    }

    func send() {
        let start = lock.withLock {
            guard !sending else { return false }
            sending = true
            return true
        }
        guard start else { return }
        let thread = Thread { [self] in
            BlockingWorker.nameCurrentThread("alertd-pg-cancel")
            var buffer = [CChar](repeating: 0, count: 256)
            _ = PQcancel(pointer, &buffer, Int32(buffer.count))
            lock.withLock { sending = false }
        }
        thread.start()
    }
}
