import AlertdKit
import ArgumentParser

struct InitPlatformCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init-platform",
        abstract: "Create the ETL platform's tables and Supabase's roles on an empty local database, for trials and tests.",
        discussion: "Never run this against the platform's real database. It refuses when the platform's tables already exist; with --if-missing it then does nothing and exits 0 (for scripts that run at every start)."
    )

    @OptionGroup var options: DatabaseOptions

    @Flag(name: .customLong("if-missing"), help: "Do nothing, successfully, when the platform's tables exist.")
    var ifMissing = false

    func run() async throws {
        try await options.withTool { tool in
            do {
                try await tool.initPlatform()
            } catch let error as AlertdError where ifMissing && error.code == .platformExists {
                print("The platform's tables exist already; nothing to do.")
            }
        }
    }
}
