import Foundation

/// How a process ended, carrying what it printed, so that an expectation on it that fails says
/// why: `#expect(result.status == 0)` compares the ending only, and on failure shows the ending
/// and the end of the output.
public struct ProcessExit: Sendable, Equatable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public enum Ending: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
        /// Still running when the waiting stopped (the process was then killed).
        case stillRunning(after: Duration)
    }

    public let ending: Ending
    public let output: String

    public init(_ ending: Ending, output: String) {
        self.ending = ending
        self.output = output
    }

    public init(integerLiteral value: Int32) {
        self.init(.exited(value), output: "")
    }

    /// The exit status, or nil when the process did not exit by itself.
    public var code: Int32? {
        if case .exited(let code) = ending { return code }
        return nil
    }

    public static func == (left: ProcessExit, right: ProcessExit) -> Bool {
        left.ending == right.ending
    }

    public var description: String {
        let ending: String
        switch self.ending {
        case .exited(let code): ending = "exit status \(code)"
        case .signalled(let signal): ending = "ended by signal \(signal)"
        case .stillRunning(let after): ending = "still running \(after) after it was asked to stop"
        }
        guard !output.isEmpty else { return ending }
        let tail = output.count > 4_000 ? "…" + output.suffix(4_000) : Substring(output)
        return "\(ending); its output:\n\(tail)"
    }
}
