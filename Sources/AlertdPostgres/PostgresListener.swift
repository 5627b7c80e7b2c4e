import AlertdSupport
import CLibPQ
import Foundation
import Logging

/// A notification received on a LISTEN channel.
public struct PostgresNotification: Sendable, Equatable {
    public let channel: String
    public let payload: String
    /// The server process that sent it.
    public let senderPID: Int32

    public init(channel: String, payload: String, senderPID: Int32) {
        self.channel = channel
        self.payload = payload
        self.senderPID = senderPID
    }
}

/// What a listener reports.
public enum PostgresListenerEvent: Sendable, Equatable {
    /// LISTEN is active: first after start, then after every reconnect. Notifications sent while
    /// no connection was listening are lost, so a consumer checks for work it may have missed.
    case listening(reconnected: Bool)
    /// The connection was lost; the listener is reconnecting with backoff.
    case disconnected
    case notification(PostgresNotification)
    /// The connection's sessions are not its own (a pooler in transaction mode): notifications
    /// never arrive there. The listener has stopped; the message names the cause and the fix.
    case sessionNotOwn(String)
}

/// The events of a running ``PostgresListener``, in order.
public struct PostgresListenerEvents: AsyncSequence, Sendable {
    public typealias Element = PostgresListenerEvent
    let stream: AsyncStream<PostgresListenerEvent>

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<PostgresListenerEvent>.AsyncIterator
        public mutating func next() async -> PostgresListenerEvent? {
            await base.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator())
    }
}

/// LISTENs on channels over a connection of its own, reconnecting with backoff when it breaks.
///
/// The connection lives on a dedicated thread that waits in `poll(2)` on the server socket and
/// on a self-pipe, so it never blocks Swift's concurrency pool and stops as soon as it is told.
/// When idle it checks the connection every `healthCheckInterval` with a `SELECT 1` that must
/// answer within `healthCheckTimeout`; a connection cut without a close is noticed that way.
/// Nothing it sends blocks inside libpq: connecting, LISTEN and the checks wait on the socket
/// beside the self-pipe, each within its timeout, so a server or pooler that never answers
/// cannot hold up a shutdown. After every LISTEN it checks that the session is its own
/// (``PostgresSessionCheck``) and stops with `.sessionNotOwn` if it is not.
public struct PostgresListener: Sendable {
    public var connectionString: PostgresConnectionString
    public var channels: [String]
    public var reconnectBackoff: Backoff
    public var healthCheckInterval: Duration
    public var healthCheckTimeout: Duration
    /// After every LISTEN, how long a notification sent to itself from another connection may
    /// take to arrive (``PostgresSessionCheck``); nil: no check.
    public var sessionCheckTimeout: Duration?
    public var logger: Logger

    public init(
        connectionString: PostgresConnectionString,
        channels: [String],
        reconnectBackoff: Backoff = .reconnect,
        healthCheckInterval: Duration = .seconds(30),
        healthCheckTimeout: Duration = .seconds(10),
        sessionCheckTimeout: Duration? = PostgresSessionCheck.defaultTimeout,
        logger: Logger
    ) {
        self.connectionString = connectionString
        self.channels = channels
        self.reconnectBackoff = reconnectBackoff
        self.healthCheckInterval = healthCheckInterval
        self.healthCheckTimeout = healthCheckTimeout
        self.sessionCheckTimeout = sessionCheckTimeout
        self.logger = logger
    }

    /// Listens while `body` runs and stops, closing the connection, when it returns, throws or
    /// its task is cancelled.
    public func run<T: Sendable>(_ body: (PostgresListenerEvents) async throws -> T) async throws -> T {
        let (stream, continuation) = AsyncStream.makeStream(
            of: PostgresListenerEvent.self,
            bufferingPolicy: .bufferingNewest(4096)
        )
        let loop = try ListenLoop(configuration: self, continuation: continuation)
        loop.start()
        do {
            let result = try await withTaskCancellationHandler {
                try await body(PostgresListenerEvents(stream: stream))
            } onCancel: {
                loop.stop()
            }
            loop.stop()
            await loop.waitUntilFinished()
            return result
        } catch {
            loop.stop()
            await loop.waitUntilFinished()
            throw error
        }
    }
}

/// The listener's thread and everything it owns.
final class ListenLoop: @unchecked Sendable {
    // Invariants: `connection` is touched only by the loop thread. The poller lives as long as
    // the loop, so `stop()` may wake it at any time. `finished` and `waiters` are guarded by
    // `lock`.
    private let configuration: PostgresListener
    private let continuation: AsyncStream<PostgresListenerEvent>.Continuation
    private let poller: SocketPoller
    private var connection: OpaquePointer?
    private let lock = NSLock()
    private var finished = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(configuration: PostgresListener, continuation: AsyncStream<PostgresListenerEvent>.Continuation) throws {
        do {
            poller = try SocketPoller()
        } catch {
            throw PostgresError(.connectionFailed, "Cannot create the listener's wake-up pipe: \(error).")
        }
        self.configuration = configuration
        self.continuation = continuation
    }

    func start() {
        let thread = Thread { [self] in
            BlockingWorker.nameCurrentThread("alertd-listen")
            self.loop()
            self.markFinished()
        }
        thread.start()
    }

    /// Wakes the thread and tells it to stop. Safe from any thread, any number of times.
    func stop() {
        poller.wake()
    }

    func waitUntilFinished() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            lock.lock()
            if finished {
                lock.unlock()
                waiter.resume()
            } else {
                waiters.append(waiter)
                lock.unlock()
            }
        }
    }

    private func markFinished() {
        continuation.finish()
        lock.lock()
        finished = true
        let pending = waiters
        waiters.removeAll()
        lock.unlock()
        pending.forEach { $0.resume() }
    }

    private var logger: Logger { configuration.logger }

    private func loop() {
        var failedAttempts = 0
        var everListened = false
        defer { disconnect() }
        while !stopRequested() {
            guard connection != nil else {
                switch connectAndListen() {
                case .listening:
                    failedAttempts = 0
                    continuation.yield(.listening(reconnected: everListened))
                    everListened = true
                    continue
                case .stop:
                    return
                case .notOwn(let message):
                    logger.error("the database connection is not a session of its own; alertd run cannot work through it", metadata: [LogKey.error: "\(message)"])
                    continuation.yield(.sessionNotOwn(message))
                    return
                case .failed:
                    break
                }
                failedAttempts += 1
                let delay = configuration.reconnectBackoff.delay(attempt: failedAttempts)
                logger.debug("listener waiting before reconnecting", metadata: [LogKey.retryInSeconds: "\(delay.seconds)"])
                if waitForStop(timeout: delay) { return }
                continue
            }
            switch waitForInput(timeout: configuration.healthCheckInterval) {
            case .stop:
                return
            case .readable:
                if !consumeInput() { connectionLost("the server closed the connection") }
            case .timedOut:
                switch healthCheck() {
                case .stop: return
                case .healthy: break
                case .failed(let reason): connectionLost(reason)
                }
            }
        }
    }

    private func stopRequested() -> Bool {
        poller.isWoken
    }

    /// Waits up to `timeout`; true if a stop was requested meanwhile.
    private func waitForStop(timeout: Duration) -> Bool {
        poller.wait([], timeout: timeout).woken
    }

    private enum Wait { case stop, readable, timedOut }

    private func waitForInput(timeout: Duration) -> Wait {
        guard let connection else { return .timedOut }
        let ready = poller.wait([(PQsocket(connection), Int16(POLLIN))], timeout: timeout)
        if ready.woken { return .stop }
        return ready.events.isEmpty ? .timedOut : .readable
    }

    /// Waits on one socket beside the self-pipe.
    private func wait(_ fd: Int32, _ events: Int16, _ timeout: Duration) -> SocketWaitResult {
        let ready = poller.wait([(fd, events)], timeout: timeout)
        if ready.woken { return .stopped }
        return ready.events.isEmpty ? .timedOut : .ready
    }

    private func pass(_ notification: PostgresNotification) {
        continuation.yield(.notification(notification))
    }

    private enum Connecting { case listening, failed, stop, notOwn(String) }

    private func connectAndListen() -> Connecting {
        let connectionString = configuration.connectionString
        let redactor = connectionString.redactor
        let candidate: OpaquePointer
        switch PostgresConnector.connect(connectionString, wait: wait) {
        case .stopped:
            return .stop
        case .failed(let reason):
            logger.warning("listener cannot connect to PostgreSQL", metadata: [LogKey.error: "\(redactor.redact(reason))"])
            return .failed
        case .connected(let connection):
            candidate = connection
        }
        // Notices (from LISTEN, say) are of no use here; keep them off stderr.
        PQsetNoticeProcessor(candidate, { _, _ in }, nil)
        // First the session check: behind a transaction pooler, a LISTEN on the channels would
        // stay behind on a pooled server connection after alertd has gone.
        if let timeout = configuration.sessionCheckTimeout {
            let check = SessionCheck(connectionString: connectionString, timeout: timeout)
            switch check.run(on: candidate, wait: wait, pass: pass) {
            case nil:
                PQfinish(candidate)
                return .stop
            case .pooled(let evidence):
                PQfinish(candidate)
                return .notOwn(PostgresSessionVerdict.pooledMessage(connectionString, evidence: evidence))
            case .unknown(let reason):
                // Nothing proves the session shared: listen, and check again at the next connect.
                logger.warning("cannot check that the LISTEN session is alertd's own", metadata: [LogKey.error: "\(reason)"])
            case .own:
                break
            }
        }
        let listen = configuration.channels.map { "LISTEN " + PostgresSession.quoteIdentifier($0) }.joined(separator: "; ")
        switch LibPQCommand.run(listen, on: candidate, timeout: configuration.healthCheckTimeout, wait: wait, pass: pass) {
        case .stopped:
            PQfinish(candidate)
            return .stop
        case .failed(let reason):
            PQfinish(candidate)
            logger.warning("listener cannot LISTEN", metadata: [
                LogKey.channel: "\(configuration.channels.joined(separator: ","))", LogKey.error: "\(redactor.redact(reason))",
            ])
            return .failed
        case .done:
            break
        }
        connection = candidate
        logger.debug("listening", metadata: [
            LogKey.channel: "\(configuration.channels.joined(separator: ","))",
            LogKey.backendPID: "\(PQbackendPID(candidate))",
        ])
        return .listening
    }

    /// Reads what the server sent and passes on its notifications; false if the connection broke.
    private func consumeInput() -> Bool {
        guard let connection, PQconsumeInput(connection) == 1 else { return false }
        LibPQCommand.takeNotifications(from: connection, pass)
        return PQstatus(connection) == CONNECTION_OK
    }

    private enum Health { case stop, healthy, failed(String) }

    /// Sends `SELECT 1` and waits for its answer, passing on notifications that arrive meanwhile.
    private func healthCheck() -> Health {
        guard let connection else { return .failed("no connection") }
        switch LibPQCommand.run("SELECT 1", on: connection, timeout: configuration.healthCheckTimeout, wait: wait, pass: pass) {
        case .stopped: return .stop
        case .done: return .healthy
        case .failed(let reason):
            return .failed(reason.hasPrefix("no answer") ? "no answer to a health check within \(configuration.healthCheckTimeout)" : reason)
        }
    }

    private func connectionLost(_ reason: String) {
        logger.warning("listener lost its connection; reconnecting", metadata: [
            LogKey.error: "\(configuration.connectionString.redactor.redact(reason))",
        ])
        disconnect()
        continuation.yield(.disconnected)
    }

    private func disconnect() {
        if let connection {
            PQfinish(connection)
            self.connection = nil
        }
    }
}
