import ArgumentParser

struct InitPlatformCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init-platform",
        abstract: "Create the ETL platform's tables and Supabase's roles on an empty local database, for trials and tests.",
        discussion: "Never run this against the platform's real database. It refuses when the platform's tables already exist."
    )

    @OptionGroup var options: DatabaseOptions

    func run() async throws {
        try await options.withTool { try await $0.initPlatform() }
    }
}
