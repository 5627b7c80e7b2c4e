import AlertdSupport
import CLibPQ
import Foundation

/// Whether a connection string gives its connections a server session of their own, as LISTEN,
/// session settings, session advisory locks and prepared statements need.
///
/// Behind a pooler in transaction mode (PgBouncer's `pool_mode = transaction`, Supabase's
/// transaction pooler on port 6543) a client holds a server connection only while a transaction
/// runs. A notification sent to a channel it listens on reaches it only if it is inside a
/// transaction at that moment: an idle listener never hears one (the pooler drops it). So the
/// check listens on a channel of its own, sends it a notification from a second connection, and
/// waits for it. On a direct connection or a session pooler it comes within milliseconds.
public enum PostgresSessionVerdict: Sendable, Equatable {
    /// The notification arrived: the session is the client's own.
    case own
    /// It never arrived, or it came back on the connection that sent it: the connections share
    /// server sessions, as behind a pooler in transaction mode.
    case pooled(evidence: String)
    /// The check could not run (the second connection failed, say): nothing is known.
    case unknown(String)

    /// The error alertd gives for a pooled connection string: the cause and the fix.
    public static func pooledMessage(_ connectionString: PostgresConnectionString, evidence: String) -> String {
        let place = [connectionString.host, connectionString.port].compactMap { $0 }.joined(separator: ":")
        let onPort6543 = connectionString.port == "6543" ? " Port 6543 is the transaction pooler's on Supabase." : ""
        return """
            The database connection (\(place.isEmpty ? "libpq's default" : place)) goes through a pooler in transaction mode: \
            its sessions are not alertd's own (\(evidence)), so LISTEN, session advisory locks and prepared statements do not work \
            there, and alertd run refuses it.\(onPort6543) Connect directly, or through the pooler in session mode: on Supabase, \
            the "Session pooler" connection string (port 5432 on the pooler host) or the direct connection \
            (db.<project>.supabase.co:5432); with PgBouncer, a database or user with pool_mode = session.
            """
    }
}

public enum PostgresSessionCheck {
    /// How long each of the check's notifications may take to arrive. A listener on its own
    /// session hears one in milliseconds; this allows a server under heavy load.
    public static let defaultTimeout: Duration = .seconds(5)

    /// Checks `connectionString` on two connections of its own, on a thread of its own.
    public static func check(_ connectionString: PostgresConnectionString, timeout: Duration = defaultTimeout) async -> PostgresSessionVerdict {
        let worker = BlockingWorker(name: "alertd-pg-check")
        defer { worker.shutdown() }
        let flag = CancellationFlag()
        let verdict = try? await withTaskCancellationHandler {
            try await worker.run { () -> PostgresSessionVerdict in
                let wait = PostgresConnector.slicedWait { flag.isCancelled }
                switch PostgresConnector.connect(connectionString, wait: wait) {
                case .stopped:
                    return .unknown("the check was stopped")
                case .failed(let reason):
                    return .unknown("cannot connect: \(connectionString.redactor.redact(reason))")
                case .connected(let connection):
                    defer { PQfinish(connection) }
                    PQsetNoticeProcessor(connection, { _, _ in }, nil)
                    let check = SessionCheck(connectionString: connectionString, timeout: timeout)
                    return check.run(on: connection, wait: wait, pass: { _ in }) ?? .unknown("the check was stopped")
                }
            }
        } onCancel: {
            flag.cancel()
        }
        return verdict ?? .unknown("the check was stopped")
    }
}

/// The check itself, on a connection the caller owns and waits on (the listener's, on its
/// thread).
struct SessionCheck {
    let connectionString: PostgresConnectionString
    let timeout: Duration
    /// A notification lost once is tried again before the verdict: never refuse a session for
    /// one slow moment.
    let attempts = 2

    /// nil if `wait` said stop.
    func run(on listening: OpaquePointer, wait: SocketWait, pass: (PostgresNotification) -> Void) -> PostgresSessionVerdict? {
        let channel = "alertd_session_check_" + UUID().uuidString.prefix(8).lowercased()
        let quoted = PostgresSession.quoteIdentifier(channel)
        switch LibPQCommand.run("LISTEN \(quoted)", on: listening, timeout: timeout, wait: wait, pass: pass) {
        case .stopped: return nil
        case .failed(let reason): return .unknown("LISTEN failed: \(connectionString.redactor.redact(reason))")
        case .done: break
        }
        defer { _ = LibPQCommand.run("UNLISTEN \(quoted)", on: listening, timeout: timeout, wait: wait, pass: pass) }
        return confirm(channel: channel, on: listening, wait: wait, pass: pass)
    }

    /// The check once `listening` listens on `channel`: notifications sent to it from another
    /// connection must arrive. nil if `wait` said stop.
    func confirm(channel: String, on listening: OpaquePointer, wait: SocketWait, pass: (PostgresNotification) -> Void) -> PostgresSessionVerdict? {
        for attempt in 1...attempts {
            let token = UUID().uuidString
            switch send(token, to: channel, wait: wait) {
            case .stopped: return nil
            case .failed(let reason): return .unknown(reason)
            case .cameBack: return .pooled(evidence: "a notification came back on the connection that sent it")
            case .sent: break
            }
            switch waitFor(token, on: channel, listening: listening, wait: wait, pass: pass) {
            case .stopped: return nil
            case .failed(let reason): return .unknown(reason)
            case .arrived: return .own
            case .timedOut: break
            }
            // A listening connection whose server process answers nothing at all (frozen, or
            // cut off without a close) hears no notification either: that is a broken
            // connection, not a pooler. Ask it a question before blaming the session. (A
            // notification arriving during the question proves nothing: behind a pooler the
            // question may run on the server connection that listens.)
            switch LibPQCommand.run("SELECT 1", on: listening, timeout: timeout, wait: wait, pass: { if $0.channel != channel { pass($0) } }) {
            case .stopped: return nil
            case .failed(let reason):
                return .unknown("the listening connection stopped answering: \(connectionString.redactor.redact(reason))")
            case .done where attempt == attempts:
                return .pooled(evidence: "\(attempts) notifications from another connection never arrived, \(timeout.seconds) s each, while the listening connection answered queries")
            case .done: continue
            }
        }
        return nil
    }

    private enum Sending { case sent, cameBack, failed(String), stopped }

    /// Sends the notification from a second connection, made for it.
    private func send(_ token: String, to channel: String, wait: SocketWait) -> Sending {
        let sender: OpaquePointer
        switch PostgresConnector.connect(connectionString, wait: wait) {
        case .stopped: return .stopped
        case .failed(let reason): return .failed("a second connection failed: \(connectionString.redactor.redact(reason))")
        case .connected(let connection): sender = connection
        }
        defer { PQfinish(sender) }
        PQsetNoticeProcessor(sender, { _, _ in }, nil)
        var cameBack = false
        let answer = LibPQCommand.run("SELECT pg_notify('\(channel)', '\(token)')", on: sender, timeout: timeout, wait: wait) { notification in
            if notification.channel == channel && notification.payload == token { cameBack = true }
        }
        switch answer {
        case .stopped: return .stopped
        case .failed(let reason): return .failed("pg_notify failed: \(connectionString.redactor.redact(reason))")
        case .done: return cameBack ? .cameBack : .sent
        }
    }

    private enum Arrival { case arrived, timedOut, failed(String), stopped }

    private func waitFor(_ token: String, on channel: String, listening: OpaquePointer, wait: SocketWait, pass: (PostgresNotification) -> Void) -> Arrival {
        let deadline = ContinuousClock.now + timeout
        var arrived = false
        let consume: (PostgresNotification) -> Void = { notification in
            if notification.channel == channel {
                if notification.payload == token { arrived = true }
            } else {
                pass(notification)
            }
        }
        LibPQCommand.takeNotifications(from: listening, consume)
        while !arrived {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return .timedOut }
            switch wait(PQsocket(listening), Int16(POLLIN), remaining) {
            case .stopped: return .stopped
            case .timedOut: return .timedOut
            case .ready:
                guard PQconsumeInput(listening) == 1 else {
                    return .failed("the listening connection broke: \(connectionString.redactor.redact(PostgresSession.errorMessage(of: listening)))")
                }
                LibPQCommand.takeNotifications(from: listening, consume)
            }
        }
        return .arrived
    }
}

/// One statement without parameters on a connection the caller waits on itself, passing on the
/// notifications that arrive meanwhile: the listener's way of talking to the server, which
/// never blocks inside libpq.
enum LibPQCommand {
    enum Answer { case done, failed(String), stopped }

    static func run(_ sql: String, on connection: OpaquePointer, timeout: Duration, wait: SocketWait, pass: (PostgresNotification) -> Void) -> Answer {
        guard PQsendQuery(connection, sql) == 1 else { return .failed(PostgresSession.errorMessage(of: connection)) }
        let deadline = ContinuousClock.now + timeout
        while PQisBusy(connection) == 1 {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return .failed("no answer within \(timeout.seconds) s") }
            switch wait(PQsocket(connection), Int16(POLLIN), remaining) {
            case .stopped: return .stopped
            case .timedOut: continue
            case .ready:
                guard PQconsumeInput(connection) == 1 else { return .failed(PostgresSession.errorMessage(of: connection)) }
                takeNotifications(from: connection, pass)
            }
        }
        var failure: String?
        while let result = PQgetResult(connection) {
            let status = PQresultStatus(result)
            if failure == nil && status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK {
                failure = PQresultErrorMessage(result).map { String(cString: $0) }?.trimmingCharacters(in: .whitespacesAndNewlines)
                    ?? PostgresSession.errorMessage(of: connection)
            }
            PQclear(result)
        }
        takeNotifications(from: connection, pass)
        return failure.map(Answer.failed) ?? .done
    }

    static func takeNotifications(from connection: OpaquePointer, _ pass: (PostgresNotification) -> Void) {
        while let notification = PQnotifies(connection) {
            let event = PostgresNotification(
                channel: String(cString: notification.pointee.relname),
                payload: String(cString: notification.pointee.extra),
                senderPID: notification.pointee.be_pid
            )
            PQfreemem(notification)
            pass(event)
        }
    }
}
