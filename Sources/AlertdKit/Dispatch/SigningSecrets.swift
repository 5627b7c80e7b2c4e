import AlertdPostgres
import Foundation
import Logging
import Synchronization

/// The dispatcher's copy of its integrations' webhook signing secrets (`alertd_signing_secrets`):
/// an integration's are read when one of its webhooks is first claimed and again when they are
/// older than `refreshInterval`, so a rotation reaches every instance within that time, and a
/// claim of webhooks whose secrets are known costs no statement.
final class SigningSecrets: Sendable {
    private struct Known {
        var secrets: [WebhookSigner.Secret]
        var readAt: ContinuousClock.Instant
    }

    private struct State {
        var known: [UUID: Known] = [:]
        /// When the schema was found without secrets per integration (before 20251203): looked
        /// for again after `refreshInterval`.
        var schemaLacksSince: ContinuousClock.Instant?
        var lackLogged = false
    }

    private let state = Mutex(State())
    private let signing: WebhookSigning
    private let logger: Logger

    static let refreshInterval: Duration = .seconds(30)
    /// Integrations whose webhooks were not claimed for this long are forgotten.
    static let forgetAfter: Duration = .seconds(3600)

    init(signing: WebhookSigning, logger: Logger) {
        self.signing = signing
        self.logger = logger
    }

    /// `alerts` with their integrations' secrets. Throws when they cannot be read: no webhook of
    /// an integration goes out signed with anything but what `signing` says.
    func apply(_ alerts: [ClaimedAlert], store: SigningSecretStore, now: ContinuousClock.Instant = .now) async throws -> [ClaimedAlert] {
        guard signing != .shared else { return alerts }
        let wanted = Set(alerts.lazy.filter { $0.channel == .webhook }.compactMap(\.integration?.id))
        guard !wanted.isEmpty else { return alerts }
        let toRead = state.withLock { state -> [UUID] in
            if let since = state.schemaLacksSince, now - since < Self.refreshInterval { return [] }
            return wanted.filter { id in state.known[id].map { now - $0.readAt >= Self.refreshInterval } ?? true }
        }
        if !toRead.isEmpty { try await read(toRead, store: store, now: now) }
        let known = state.withLock { $0.known }
        return alerts.map { alert in
            guard alert.channel == .webhook, let id = alert.integration?.id, let secrets = known[id]?.secrets else { return alert }
            var alert = alert
            alert.signingSecrets = secrets
            return alert
        }
    }

    private func read(_ integrations: [UUID], store: SigningSecretStore, now: ContinuousClock.Instant) async throws {
        let read: [UUID: [String]]
        do {
            read = try await store.signing(integrations)
        } catch let error as PostgresError where error.sqlState == "42883" || error.sqlState == "42P01" {
            // undefined_function or undefined_table: the schema is older than 20251203.
            let log = state.withLock { state in
                state.schemaLacksSince = now
                defer { state.lackLogged = true }
                return !state.lackLogged
            }
            if log {
                logger.warning(
                    "the database has no signing secret per integration (migration 20251203_alertd_signing_secrets): webhooks are signed with ALERTD_WEBHOOK_SECRET alone, if set; apply it with alertd db migrate",
                    metadata: ["webhook_signing": "\(signing.rawValue)"]
                )
            }
            return
        }
        var parsed: [UUID: [WebhookSigner.Secret]] = [:]
        for (integration, texts) in read {
            parsed[integration] = texts.compactMap { text in
                do { return try WebhookSigner.Secret(text) } catch {
                    logger.error("an integration's signing secret in alertd_signing_secrets is not a whsec_ secret; it signs nothing", metadata: ["integration": "\(integration)"])
                    return nil
                }
            }
        }
        state.withLock { state in
            state.schemaLacksSince = nil
            state.known = state.known.filter { now - $0.value.readAt < Self.forgetAfter }
            for integration in integrations {
                // An integration deleted meanwhile has none: its alerts go unsigned by it.
                state.known[integration] = Known(secrets: parsed[integration] ?? [], readAt: now)
            }
        }
    }
}
