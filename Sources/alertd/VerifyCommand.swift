import ArgumentParser

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check, item by item, that everything the migrations create is present.",
        discussion: "Runs the three verification queries of the migration instructions and checks every column, index, function, view, policy, grant and trigger. Exits 0 only when all is present."
    )

    @OptionGroup var options: DatabaseOptions

    func run() async throws {
        try await options.withTool { tool in
            guard try await tool.verify() else { throw ExitCode.failure }
        }
    }
}
