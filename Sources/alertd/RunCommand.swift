import AlertdKit
import ArgumentParser

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Deliver alerts until SIGTERM or SIGINT.",
        discussion: "Claims due alerts in batches under a lease, delivers them and records every attempt. Several instances may run against one database."
    )

    @OptionGroup var options: RunOptions

    func run() async throws {
        do {
            let logger = try options.logger()
            let configuration = try options.configuration()
            let templates = try await AlertTemplates.load(from: configuration.templatesDirectory)
            let services = AlertdServices.build(configuration: configuration, templates: templates, logger: logger)
            AlertdServices.unblockShutdownSignals()
            try await services.group.run()
        } catch {
            throw reportFailure(error)
        }
    }
}
