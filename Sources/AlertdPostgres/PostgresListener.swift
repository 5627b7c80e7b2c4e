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
public struct PostgresListener: Sendable {
    public var connectionString: PostgresConnectionString
    public var channels: [String]
    public var reconnectBackoff: Backoff
    public var healthCheckInterval: Duration
    public var healthCheckTimeout: Duration
    public var logger: Logger

    public init(
        connectionString: PostgresConnectionString,
        channels: [String],
        reconnectBackoff: Backoff = .reconnect,
        healthCheckInterval: Duration = .seconds(30),
        healthCheckTimeout: Duration = .seconds(10),
        logger: Logger
    ) {
        self.connectionString = connectionString
        self.channels = channels
        self.reconnectBackoff = reconnectBackoff
        self.healthCheckInterval = healthCheckInterval
        self.healthCheckTimeout = healthCheckTimeout
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
                if connectAndListen() {
                    failedAttempts = 0
                    continuation.yield(.listening(reconnected: everListened))
                    everListened = true
                    continue
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

    private func connectAndListen() -> Bool {
        let redactor = configuration.connectionString.redactor
        let candidate = PostgresSession.connectBlocking(configuration.connectionString)
        guard let candidate, PQstatus(candidate) == CONNECTION_OK else {
            let reason = candidate.map { PostgresSession.errorMessage(of: $0) } ?? "out of memory"
            PQfinish(candidate)
            logger.warning("listener cannot connect to PostgreSQL", metadata: [LogKey.error: "\(redactor.redact(reason))"])
            return false
        }
        // Notices (from LISTEN, say) are of no use here; keep them off stderr.
        PQsetNoticeProcessor(candidate, { _, _ in }, nil)
        for channel in configuration.channels {
            let result = PQexec(candidate, "LISTEN " + PostgresSession.quoteIdentifier(channel))
            let ok = PQresultStatus(result) == PGRES_COMMAND_OK
            PQclear(result)
            guard ok else {
                let reason = PostgresSession.errorMessage(of: candidate)
                PQfinish(candidate)
                logger.warning("listener cannot LISTEN", metadata: [LogKey.channel: "\(channel)", LogKey.error: "\(redactor.redact(reason))"])
                return false
            }
        }
        connection = candidate
        logger.debug("listening", metadata: [
            LogKey.channel: "\(configuration.channels.joined(separator: ","))",
            LogKey.backendPID: "\(PQbackendPID(candidate))",
        ])
        return true
    }

    /// Reads what the server sent and passes on its notifications; false if the connection broke.
    private func consumeInput() -> Bool {
        guard let connection, PQconsumeInput(connection) == 1 else { return false }
        while let notification = PQnotifies(connection) {
            let event = PostgresNotification(
                channel: String(cString: notification.pointee.relname),
                payload: String(cString: notification.pointee.extra),
                senderPID: notification.pointee.be_pid
            )
            PQfreemem(notification)
            continuation.yield(.notification(event))
        }
        return PQstatus(connection) == CONNECTION_OK
    }

    private enum Health { case stop, healthy, failed(String) }

    /// Sends `SELECT 1` and waits for its answer, passing on notifications that arrive meanwhile.
    private func healthCheck() -> Health {
        guard let connection else { return .failed("no connection") }
        guard PQsendQuery(connection, "SELECT 1") == 1 else {
            return .failed(PostgresSession.errorMessage(of: connection))
        }
        let deadline = ContinuousClock.now + configuration.healthCheckTimeout
        while PQisBusy(connection) == 1 {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                return .failed("no answer to a health check within \(configuration.healthCheckTimeout)")
            }
            switch waitForInput(timeout: remaining) {
            case .stop: return .stop
            case .timedOut: continue
            case .readable:
                if !consumeInput() { return .failed("the server closed the connection") }
            }
        }
        var healthy = true
        while let result = PQgetResult(connection) {
            if PQresultStatus(result) != PGRES_TUPLES_OK { healthy = false }
            PQclear(result)
        }
        return healthy ? .healthy : .failed(PostgresSession.errorMessage(of: connection))
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
