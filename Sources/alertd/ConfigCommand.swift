import AlertdKit
import AlertdPostgres
import ArgumentParser

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the effective configuration, secrets masked, and check it.",
        discussion: "Exits 1, naming every problem, when the configuration would not start alertd run (with --no-database: would not send alertd --test-notification --email/--webhook-url). Connects to the database to check that its sessions are alertd's own (not a pooler in transaction mode); a database that cannot be reached is reported, not a failure."
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
            guard !noDatabase else { return }
            // alertd run refuses a connection whose sessions are not its own: say so here first.
            let verdict = await PostgresSessionCheck.check(configuration.database)
            if case .pooled(let evidence) = verdict {
                throw AlertdError(.sessionNotOwn, PostgresSessionVerdict.pooledMessage(configuration.database, evidence: evidence))
            }
            print("database session = " + DatabaseTool.sessionLine(verdict, connectionString: configuration.database).dropFirst("Connection: ".count))
        } catch {
            throw reportFailure(error)
        }
    }
}
