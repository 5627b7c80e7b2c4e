import ArgumentParser

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "List each migration and whether it is applied."
    )

    @OptionGroup var options: DatabaseOptions

    func run() async throws {
        try await options.withTool { try await $0.status() }
    }
}
