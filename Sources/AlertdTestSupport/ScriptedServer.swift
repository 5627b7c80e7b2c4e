import Foundation

/// One of the servers in deploy/dev (webhook-receiver.py, smtp-sink.py), started for one test:
/// it prints "listening on <port>" first and logs what it receives as JSON lines.
final class ScriptedServer: @unchecked Sendable {
    // Invariant: set in start(), read-only afterwards.
    private let process: Process
    let logFile: URL
    let port: Int

    private init(process: Process, logFile: URL, port: Int) {
        self.process = process
        self.logFile = logFile
        self.port = port
    }

    /// Starts `deploy/dev/<script>` with `--log <file>` and `arguments`, on a thread of its own,
    /// and waits until it listens.
    static func start(_ script: String, _ arguments: [String]) async throws -> ScriptedServer {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try startBlocking(script, arguments) }) }.start()
        }
    }

    private static func startBlocking(_ script: String, _ arguments: [String]) throws -> ScriptedServer {
        let logFile = FileManager.default.temporaryDirectory.appending(path: "alertd-\(script)-\(UUID().uuidString).jsonl")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let process = Process()
        process.executableURL = URL(filePath: "/usr/bin/python3")
        process.arguments = [TestPostgres.packageRoot.appending(path: "deploy/dev/\(script)").path, "--log", logFile.path] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var line = Data()
        while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("listening on "), let port = Int(text.dropFirst("listening on ".count)) else {
            kill(process.processIdentifier, SIGKILL)
            throw TestSetupError("\(script) did not start: \(text)")
        }
        return ScriptedServer(process: process, logFile: logFile, port: port)
    }

    /// The entries logged so far: complete lines only. The server may be writing the last one
    /// as it is read (a long line reaches the file in more than one write), and a line without
    /// its newline yet is left for the next read.
    func entries<T: Decodable>(_ type: T.Type) throws -> [T] {
        let data = try Data(contentsOf: logFile)
        guard let end = data.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
        return try data[..<end].split(separator: UInt8(ascii: "\n")).map { try JSONDecoder().decode(T.self, from: Data($0)) }
    }

    /// Waits until `count` entries are logged, failing after `timeout`.
    func waitForEntries<T: Decodable>(_ type: T.Type, _ count: Int, timeout: Duration) async throws -> [T] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let logged = try entries(type)
            if logged.count >= count { return logged }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestSetupError("got \(try entries(type).count) entries, not \(count), within \(timeout)")
    }

    /// Kills the server without waiting (waiting would hold a thread of the concurrency pool).
    func stop(keepingLog: Bool = false) {
        kill(process.processIdentifier, SIGKILL)
        if !keepingLog { try? FileManager.default.removeItem(at: logFile) }
    }
}
