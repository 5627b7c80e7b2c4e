import AlertdPostgres
import Foundation
import Logging

/// `alertd --test-notification`: a test alert through the production path (render, sign,
/// deliver, audit), reported per channel.
public struct TestNotification: Sendable {
    public let dispatcher: Dispatcher

    public init(dispatcher: Dispatcher) {
        self.dispatcher = dispatcher
    }

    public struct Result: Sendable {
        public let channel: String
        public let target: String
        public let outcome: AttemptOutcome

        public var line: String {
            var text = "\(channel) \(target): \(outcome.result.rawValue)"
            if let status = outcome.httpStatus { text += " (HTTP \(status))" }
            if let reply = outcome.smtpReply, outcome.error?.contains(reply) != true { text += " (\(reply))" }
            if let error = outcome.error { text += ": \(error)" }
            return text
        }

        public var succeeded: Bool { outcome.result == .sent && outcome.error == nil }
    }

    /// For an integration: audit rows marked origin = 'test', one per channel it has.
    public func send(integration: UUID) async throws -> [Result] {
        let configuration = dispatcher.configuration
        let connection = try await PostgresConnection.connect(configuration.database, logger: dispatcher.logger)
        do {
            let store = AlertStore(connection: connection, worker: configuration.instance)
            let exists = try await connection.query("SELECT 1 FROM integration_configs WHERE id = $1", [integration])
            guard !exists.isEmpty else {
                throw AlertdError(.configuration, "There is no integration \(integration.postgresText).")
            }
            let alerts = try await store.createTestAlerts(integration: integration, channels: ["email", "webhook"], lease: configuration.lease)
            guard !alerts.isEmpty else {
                throw AlertdError(.configuration, "Integration \(integration.postgresText) has neither alert_emails nor alert_webhook_url: there is nothing to test.")
            }
            let outcomes = await dispatcher.deliver(alerts)
            try await store.record(outcomes)
            await connection.close()
            return results(alerts, outcomes)
        } catch {
            await connection.close()
            throw error
        }
    }

    /// For addresses and URLs given on the command line: nothing is written to the database.
    public func send(emails: [String], webhookURLs: [String]) async -> [Result] {
        let alerts = (emails.isEmpty ? [] : [ClaimedAlert.test(channel: "email", recipients: emails)])
            + webhookURLs.map { ClaimedAlert.test(channel: "webhook", recipients: [$0]) }
        return results(alerts, await dispatcher.deliver(alerts))
    }

    private func results(_ alerts: [ClaimedAlert], _ outcomes: [AttemptOutcome]) -> [Result] {
        alerts.compactMap { alert in
            outcomes.first { $0.alertID == alert.id }.map {
                Result(channel: alert.channel, target: alert.recipients.joined(separator: ", "), outcome: $0)
            }
        }
    }
}
