import ArgumentParser

struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Undo applied migrations, newest first: the newest one, or all with --all.",
        discussion: "Refuses, changing nothing, when a table it would drop holds rows (the alert history is an audit record), unless --force is given."
    )

    @OptionGroup var options: DatabaseOptions

    @Flag(help: "Undo every applied migration, newest first.")
    var all = false

    @Flag(help: "Drop tables even when they hold rows.")
    var force = false

    func run() async throws {
        try await options.withTool { try await $0.rollback(all: all, force: force) }
    }
}
