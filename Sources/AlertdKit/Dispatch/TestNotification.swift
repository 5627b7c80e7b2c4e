import AlertdPostgres
import Foundation
import Logging

/// `alertd --test-notification`: a test alert through the production path (`AlertDelivery`:
/// render, sign, deliver, judge, audit), reported per channel.
public struct TestNotification: Sendable {
    let configuration: AlertdConfiguration
    let templates: AlertTemplates
    let logger: Logger

    public init(configuration: AlertdConfiguration, templates: AlertTemplates, logger: Logger) {
        self.configuration = configuration
        self.templates = templates
        self.logger = logger
    }

    public struct Result: Sendable {
        public let channel: Channel
        public let target: String
        public let outcome: AttemptOutcome
        /// For a webhook to a chat service: its format, and what it was sent (`line` shows it).
        public var format: WebhookFormat?

        public var line: String {
            var text = "\(channel.rawValue) \(target): \(outcome.result.rawValue)"
            if let status = outcome.httpStatus { text += " (HTTP \(status))" }
            if let reply = outcome.smtpReply, outcome.error?.contains(reply) != true { text += " (\(reply))" }
            if let error = outcome.error { text += ": \(error)" }
            if let format, format != .standard, let message = outcome.message {
                text += "\nThe \(format.rawValue) message:\n" + Self.pretty(message)
            }
            return text
        }

        static func pretty(_ json: String) -> String {
            guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)),
                  let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            else { return json }
            return String(decoding: data, as: UTF8.self)
        }

        public var succeeded: Bool { outcome.result == .sent && outcome.error == nil }
    }

    /// For an integration: audit rows marked origin = 'test', one per channel it has.
    public func send(integration: UUID) async throws -> [Result] {
        let connection = try await PostgresConnection.connect(configuration.database, logger: logger)
        do {
            let store = AlertStore(connection: connection, worker: configuration.instance)
            let exists = try await connection.query("SELECT 1 FROM integration_configs WHERE id = $1", [integration])
            guard !exists.isEmpty else {
                throw AlertdError(.configuration, "There is no integration \(integration.postgresText).")
            }
            let formats = IntegrationOverrides(logger: logger)
            await formats.refresh(connection)
            let secrets = SigningSecrets(signing: configuration.webhookSigning, logger: logger)
            let alerts = try await secrets.apply(
                formats.apply(try await store.createTestAlerts(integration: integration, channels: Channel.allCases, lease: configuration.lease)),
                store: SigningSecretStore(connection: connection)
            )
            guard !alerts.isEmpty else {
                throw AlertdError(.configuration, "Integration \(integration.postgresText) has neither alert_emails nor alert_webhook_url: there is nothing to test.")
            }
            let outcomes = await deliver(alerts)
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
        let alerts = (emails.isEmpty ? [] : [ClaimedAlert.test(channel: .email, recipients: emails)])
            + webhookURLs.map { ClaimedAlert.test(channel: .webhook, recipients: [$0]) }
        return results(alerts, await deliver(alerts))
    }

    /// The delivery path `alertd run` uses, with its clients for this one call.
    private func deliver(_ alerts: [ClaimedAlert]) async -> [AttemptOutcome] {
        let webhooks = WebhookClient(settings: configuration.webhook)
        let smtp = configuration.smtp.map(SMTPClient.init(settings:))
        let delivery = AlertDelivery(configuration: configuration, templates: templates, webhooks: webhooks, smtp: smtp, logger: logger)
        let outcomes = await delivery.deliver(alerts)
        await webhooks.shutdown()
        return outcomes
    }

    private func results(_ alerts: [ClaimedAlert], _ outcomes: [AttemptOutcome]) -> [Result] {
        alerts.compactMap { alert in
            outcomes.first { $0.alertID == alert.id }.map {
                var result = Result(channel: alert.channel, target: alert.recipients.joined(separator: ", "), outcome: $0)
                if alert.channel == .webhook, let url = alert.recipients.first, case .format(let detected) = WebhookFormat.detect(url) {
                    result.format = alert.webhookFormat ?? detected
                }
                return result
            }
        }
    }
}
