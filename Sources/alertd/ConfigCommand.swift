import AlertdKit
import ArgumentParser

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the effective configuration, secrets masked, and check it.",
        discussion: "Exits 1, naming every problem, when the configuration would not start alertd run."
    )

    @OptionGroup var options: RunOptions

    func run() async throws {
        do {
            let configuration = try options.configuration()
            for line in configuration.redactedLines { print(line) }
            _ = try await AlertTemplates.load(from: configuration.templatesDirectory)
        } catch {
            throw reportFailure(error)
        }
    }
}
