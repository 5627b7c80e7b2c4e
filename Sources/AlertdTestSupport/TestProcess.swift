import Foundation

/// Runs a program to completion and collects what it printed.
public enum TestProcess {
    public struct Result: Sendable {
        /// The exit status; printed, it shows the output too.
        public let status: ProcessExit
        public let standardOutput: String
        public let standardError: String
        /// Both streams, for searching everything a run printed.
        public var allOutput: String { standardOutput + standardError }
    }

    /// Runs the program on a thread of its own, so that waiting for it never holds one of the
    /// concurrency pool's threads.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        input: String? = nil
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Swift.Result {
                    try runBlocking(executable, arguments, environment: environment, input: input)
                })
            }
            thread.start()
        }
    }

    private static func runBlocking(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]?,
        input: String?
    ) throws -> Result {
        let process = Process()
        process.executableURL = URL(filePath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let output = Pipe()
        let error = Pipe()
        let inputPipe = Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = inputPipe
        try process.run()
        if let input { inputPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inputPipe.fileHandleForWriting.close()
        // Read both pipes while the process runs, so a full pipe never stalls it.
        let group = DispatchGroup()
        nonisolated(unsafe) var outputData = Data()
        nonisolated(unsafe) var errorData = Data()
        group.enter()
        DispatchQueue.global().async {
            outputData = output.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            errorData = error.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        group.wait()
        process.waitUntilExit()
        let standardOutput = String(decoding: outputData, as: UTF8.self)
        let standardError = String(decoding: errorData, as: UTF8.self)
        let ending: ProcessExit.Ending = process.terminationReason == .uncaughtSignal ? .signalled(process.terminationStatus) : .exited(process.terminationStatus)
        return Result(status: ProcessExit(ending, output: standardOutput + standardError), standardOutput: standardOutput, standardError: standardError)
    }

    /// The alertd executable built from this checkout (`ALERTD_BINARY` overrides).
    public static var alertdBinary: String {
        if let explicit = ProcessInfo.processInfo.environment["ALERTD_BINARY"] { return explicit }
        return TestPostgres.packageRoot.appending(path: ".build/debug/alertd").path
    }

    /// Runs alertd with `arguments`, with ALERTD_* variables of the test process removed unless given.
    public static func alertd(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: alertdBinary) else {
            throw TestSetupError("No alertd executable at \(alertdBinary); build it first (swift build), or set ALERTD_BINARY.")
        }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ALERTD_") && !$0.key.hasPrefix("PG") }
        environment.merge(extra) { $1 }
        return try await run(alertdBinary, arguments, environment: environment)
    }
}
