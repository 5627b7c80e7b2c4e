import AlertdKit
import ArgumentParser

@main
struct Alertd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alertd",
        abstract: "Turns sync-run outcomes in the ETL platform's database into email and webhook alerts.",
        version: AlertdVersion.string,
        subcommands: [RunCommand.self, ConfigCommand.self, DatabaseCommand.self]
    )
}
