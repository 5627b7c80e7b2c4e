import AlertdKit
import ArgumentParser

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the effective configuration, secrets masked, and check it.",
        discussion: "Exits 1, naming every problem, when the configuration would not start alertd run (with --no-database: would not send alertd --test-notification --email/--webhook-url)."
    )

    @OptionGroup var options: RunOptions

    @Flag(help: "Check a set-up without a database, as alertd --test-notification --email/--webhook-url uses it.")
    var noDatabase = false

    func run() async throws {
        do {
            let configuration = try options.configuration(requireDatabase: !noDatabase)
            for line in configuration.redactedLines {
                print(noDatabase && line.hasPrefix("database = ") ? "database = (none: --no-database)" : line)
            }
            _ = try await AlertTemplates.load(from: configuration.templatesDirectory)
        } catch {
            throw reportFailure(error)
        }
    }
}
