import ArgumentParser

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the pending migrations in order and record them.",
        discussion: "Safe to run again: applied migrations are skipped, and each migration is itself re-runnable."
    )

    @OptionGroup var options: DatabaseOptions

    func run() async throws {
        try await options.withTool { try await $0.migrate() }
    }
}
