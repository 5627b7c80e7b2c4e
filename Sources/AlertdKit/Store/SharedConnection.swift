import AlertdPostgres
import Logging

/// A database connection made on first use, retrying until the database answers, and shared by
/// the services that use it: the dispatcher and the lease renewer share the claims connection,
/// the outcome recorder and the queue reader the records connection.
public actor SharedConnection {
    private let database: PostgresConnectionString
    private let logger: Logger
    /// Run once on the new connection (session settings, reconnect hooks).
    private let prepare: @Sendable (PostgresConnection) async throws -> Void
    private var connecting: Task<PostgresConnection, any Error>?
    private var closed = false

    public init(database: PostgresConnectionString, logger: Logger, prepare: @escaping @Sendable (PostgresConnection) async throws -> Void = { _ in }) {
        self.database = database
        self.logger = logger
        self.prepare = prepare
    }

    /// The connection, once the database has answered. Cancelling the calling task ends the wait
    /// (and the connecting, for every caller).
    public func get() async throws -> PostgresConnection {
        guard !closed else { throw PostgresError(.connectionFailed, "The connection was closed at shutdown.") }
        let task: Task<PostgresConnection, any Error>
        if let connecting {
            task = connecting
        } else {
            let database = self.database
            let logger = self.logger
            let prepare = self.prepare
            task = Task {
                let connection = try await PostgresConnection.connect(database, retrying: .reconnect, logger: logger)
                try await prepare(connection)
                return connection
            }
            connecting = task
        }
        do {
            return try await withTaskCancellationHandler {
                try await task.value
            } onCancel: {
                task.cancel()
            }
        } catch {
            // A failed attempt is not kept: the next caller connects anew.
            if connecting == task { connecting = nil }
            throw error
        }
    }

    /// Closes the connection if it was made; later calls to `get` fail.
    public func close() async {
        closed = true
        guard let connecting else { return }
        connecting.cancel()
        if let connection = try? await connecting.value { await connection.close() }
    }
}
