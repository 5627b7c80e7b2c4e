import AlertdSupport
import CLibPQ
import Foundation

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

    private init(connectionString: PostgresConnectionString) {
        self.connectionString = connectionString
    }

    deinit {
        cancelHandle.replace(with: nil)
        if let connection { PQfinish(connection) }
    }

    /// Opens a connection; blocks until the server accepts it or libpq gives up.
    static func open(_ connectionString: PostgresConnectionString) throws(PostgresError) -> PostgresSession {
        let session = PostgresSession(connectionString: connectionString)
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
        let connection = Self.connectBlocking(connectionString)
        guard PQstatus(connection) == CONNECTION_OK else {
            let reason = connection.map { Self.errorMessage(of: $0) } ?? "out of memory"
            PQfinish(connection)
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
        // Timestamps without a time zone are read as UTC; keep the session's zone UTC to match.
        _ = try execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'")
        if let sessionSettings { _ = try execute(sessionSettings) }
    }

    /// Connects with the application name `alertd` unless the string names another, and a
    /// 10-second connect timeout unless it or `PGCONNECT_TIMEOUT` sets one.
    static func connectBlocking(_ connectionString: PostgresConnectionString) -> OpaquePointer? {
        var keywords = ["fallback_application_name"]
        var values = ["alertd"]
        if ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil {
            // Listed before dbname, so that a connect_timeout in the string overrides it.
            keywords.append("connect_timeout")
            values.append("10")
        }
        keywords.append("dbname")
        values.append(connectionString.conninfo)

        let keywordPointers = keywords.map { strdup($0) } + [nil]
        let valuePointers = values.map { strdup($0) } + [nil]
        defer {
            keywordPointers.forEach { free($0) }
            valuePointers.forEach { free($0) }
        }
        return keywordPointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordBuffer in
            valuePointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { valueBuffer in
                PQconnectdbParams(keywordBuffer.baseAddress, valueBuffer.baseAddress, 1)
            }
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
        try ensureConnected()
        let name: String
        if let existing = prepared[sql] {
            name = existing
        } else {
            name = "alertd_\(prepared.count + 1)"
            let result = awaitResult(sent: PQsendPrepare(connection, name, sql, Int32(parameters.count), nil))
            defer { PQclear(result) }
            _ = try rows(of: result)
            prepared[sql] = name
        }
        let sent = Self.withTexts(of: parameters) { count, values in
            PQsendQueryPrepared(connection, name, count, values, nil, nil, 0)
        }
        let result = awaitResult(sent: sent)
        defer { PQclear(result) }
        do {
            return try rows(of: result)
        } catch where error.sqlState == "0A000" && mayPrepareAgain && !inTransaction {
            // "cached plan must not change result type": a migration changed a table under the
            // statement. Prepared again, once.
            _ = try? execute("DEALLOCATE \(name)")
            prepared[sql] = nil
            return try preparedQuery(sql, parameters, mayPrepareAgain: false)
        }
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
        var lastCancelRequest: ContinuousClock.Instant?
        while PQisBusy(connection) == 1 {
            if cancellation?.isCancelled == true,
               lastCancelRequest.map({ ContinuousClock.now - $0 > .seconds(1) }) ?? true {
                cancelHandle.requestCancel()
                lastCancelRequest = ContinuousClock.now
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
        if sqlState.hasPrefix("08") || sqlState == "57P01" { error.code = .connectionLost }
        return error
    }

    private func lostOrFailed() -> PostgresError {
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
final class CancelHandle {
    private var cancel: OpaquePointer?

    func replace(with newValue: OpaquePointer?) {
        if let cancel { PQfreeCancel(cancel) }
        cancel = newValue
    }

    func requestCancel() {
        guard let cancel else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancel, &buffer, Int32(buffer.count))
    }
}
