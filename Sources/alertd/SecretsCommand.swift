import AlertdKit
import ArgumentParser
import Foundation

struct SecretsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secrets",
        abstract: "Show or rotate an integration's webhook signing secret (each integration has its own).",
        discussion: """
            A receiver verifies alertd's webhooks with its integration's secret, as the Standard Webhooks libraries do \
            (webhook-id, webhook-timestamp, webhook-signature). The integration's tenant admins can read it themselves; \
            the query is in docs/security.md.
            """,
        subcommands: [SecretsShowCommand.self, SecretsRotateCommand.self]
    )
}

/// What `alertd secrets` prints of an integration's secrets.
func printSecrets(_ entries: [SigningSecretStore.Entry], integration: UUID) {
    for entry in entries {
        if let until = entry.retiresAt {
            print("retiring  \(entry.secret)  signs beside the current one until \(AuditFormat.utc(until))")
        } else {
            print("current   \(entry.secret)  since \(AuditFormat.utc(entry.createdAt)) (by \(entry.createdBy))")
        }
    }
    if entries.count > 1 {
        print("Until then each webhook carries \(entries.count) signatures, space-separated: a receiver verifying with either secret accepts it.")
    }
}

struct SecretsShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print an integration's signing secret (created now if it has none), and any retiring one still signing."
    )

    @OptionGroup var options: DatabaseOptions
    // Not --integration: that is alertd's own option, for --test-notification.
    @Option(name: .customLong("integration-id"), help: "The integration (integration_configs.id).") var integration: String

    func validate() throws {
        if UUID(uuidString: integration) == nil { throw ValidationError("--integration-id takes the integration's id, a UUID.") }
    }

    func run() async throws {
        let integration = UUID(uuidString: self.integration)!
        try await options.withTool { tool in
            guard let entries = try await SigningSecretStore(connection: tool.connection).show(integration: integration) else {
                throw AlertdError(.notFound, "There is no integration \(integration.uuidString.lowercased()).")
            }
            printSecrets(entries, integration: integration)
        }
    }
}

struct SecretsRotateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Give an integration a new signing secret; the old one signs beside it for the overlap, then is deleted.",
        discussion: """
            Every alertd instance signs with the new secret within 30 seconds. During the overlap each webhook carries both \
            signatures, so the receiver can move to the new secret at any time within it. --overlap 0 ends the old secret \
            at once (after a leak): a receiver still verifying with it rejects the webhooks from then on.
            """
    )

    @OptionGroup var options: DatabaseOptions
    // Not --integration: that is alertd's own option, for --test-notification.
    @Option(name: .customLong("integration-id"), help: "The integration (integration_configs.id).") var integration: String
    @Option(help: "How long the old secret keeps signing: 24h (the default), 90m, 7d, 0.") var overlap = "24h"

    func validate() throws {
        if UUID(uuidString: integration) == nil { throw ValidationError("--integration-id takes the integration's id, a UUID.") }
        guard let overlap = AlertdConfiguration.parseDuration(overlap), overlap <= .seconds(30 * 86_400) else {
            throw ValidationError("--overlap is a duration up to 30d, such as 24h, 90m or 0.")
        }
    }

    func run() async throws {
        let integration = UUID(uuidString: self.integration)!
        let overlap = AlertdConfiguration.parseDuration(self.overlap) ?? .seconds(86_400)
        try await options.withTool { tool in
            guard let entries = try await SigningSecretStore(connection: tool.connection).rotate(integration: integration, overlap: overlap) else {
                throw AlertdError(.notFound, "There is no integration \(integration.uuidString.lowercased()).")
            }
            print(overlap == .zero ? "Rotated: the old secret signs no more." : "Rotated: the old secret signs beside the new one for \(overlap.settingText).")
            printSecrets(entries, integration: integration)
            print("alertd signs with the new secret within 30 seconds.")
        }
    }
}
