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
            let shutdown = ShutdownSignal()
            shutdown.installSignalHandlers()
            let dispatcher = Dispatcher(configuration: configuration, templates: templates, logger: logger)
            // Up before the database answers: /healthz says alive, /readyz says what is missing.
            let status = try configuration.httpAddress.map { address in
                let metrics = dispatcher.metrics
                return try StatusServer.start(on: address) { path in metrics.respond(to: path) }
            }
            if let status {
                logger.info("serving /healthz, /readyz and /metrics", metadata: ["address": "http://\(status.address)"])
            }
            do {
                try await dispatcher.run(until: shutdown)
            } catch {
                status?.stop()
                await status?.stopped()
                throw error
            }
            status?.stop()
            await status?.stopped()
        } catch {
            throw reportFailure(error)
        }
    }
}
