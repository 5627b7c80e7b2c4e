import ArgumentParser

struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Set up, migrate, check and roll back alertd's database schema.",
        subcommands: [
            InitPlatformCommand.self,
            MigrateCommand.self,
            StatusCommand.self,
            VerifyCommand.self,
            RollbackCommand.self,
        ]
    )
}
