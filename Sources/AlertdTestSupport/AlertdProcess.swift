import Foundation

/// `alertd run`, started as its own process for one test, its output kept in a file.
public final class AlertdProcess: @unchecked Sendable {
    // Invariant: set in start(), read-only afterwards.
    private let process: Process
    public let outputFile: URL

    private init(process: Process, outputFile: URL) {
        self.process = process
        self.outputFile = outputFile
    }

    /// Starts `alertd run` with only the given ALERTD_* variables.
    public static func start(environment extra: [String: String]) throws -> AlertdProcess {
        guard FileManager.default.isExecutableFile(atPath: TestProcess.alertdBinary) else {
            throw TestSetupError("No alertd executable at \(TestProcess.alertdBinary); build it first (swift build).")
        }
        let outputFile = FileManager.default.temporaryDirectory.appending(path: "alertd-run-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputFile)
        let process = Process()
        process.executableURL = URL(filePath: TestProcess.alertdBinary)
        process.arguments = ["run"]
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ALERTD_") && !$0.key.hasPrefix("PG") }
        environment["ALERTD_TEMPLATES_DIR"] = TestPostgres.packageRoot.appending(path: "templates").path
        // No grouping unless the test asks for it (see `TestPostgres.Setup.migrated`).
        environment["ALERTD_GROUP_INTERVAL"] = "off"
        environment.merge(extra) { $1 }
        process.environment = environment
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return AlertdProcess(process: process, outputFile: outputFile)
    }

    public var output: String {
        (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
    }

    public var isRunning: Bool { process.isRunning }

    /// The signal the process ended by, or nil while it runs or if it exited.
    public var endingSignal: Int32? {
        !process.isRunning && process.terminationReason == .uncaughtSignal ? process.terminationStatus : nil
    }

    /// The process ID, for signals and /proc.
    public var pid: Int32 { process.processIdentifier }

    /// Sends `signal` and waits (without holding a pool thread) for the process to end; returns
    /// how it ended with what it printed (killed, if it was still running after `timeout`).
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(30)) async -> ProcessExit {
        kill(process.processIdentifier, signal)
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                kill(process.processIdentifier, SIGKILL)
                return ProcessExit(.stillRunning(after: timeout), output: output)
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        let ending: ProcessExit.Ending = process.terminationReason == .uncaughtSignal ? .signalled(process.terminationStatus) : .exited(process.terminationStatus)
        return ProcessExit(ending, output: output)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
