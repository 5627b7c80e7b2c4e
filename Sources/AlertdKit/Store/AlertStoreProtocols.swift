import Foundation

/// Extends the leases of claimed alerts (`AlertStore.renew`), as the lease renewer needs.
protocol AlertLeases: Sendable {
    func renew(_ ids: [UUID], lease: Duration) async throws
}

/// Records attempts (`AlertStore.record`), as the outcome recorder needs; returns the ids
/// recorded.
protocol OutcomeRecords: Sendable {
    func record(_ outcomes: [AttemptOutcome]) async throws -> Set<UUID>
}

/// The alert store on a shared connection, made when first used.
struct SharedAlertStore: AlertLeases, OutcomeRecords {
    let connection: SharedConnection
    let worker: String

    func store() async throws -> AlertStore {
        AlertStore(connection: try await connection.get(), worker: worker)
    }

    func renew(_ ids: [UUID], lease: Duration) async throws {
        try await store().renew(ids, lease: lease)
    }

    func record(_ outcomes: [AttemptOutcome]) async throws -> Set<UUID> {
        try await store().record(outcomes)
    }
}
