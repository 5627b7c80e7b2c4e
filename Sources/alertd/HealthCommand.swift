import AlertdKit
import ArgumentParser
import Foundation

struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Ask a running alertd whether it is ready; exit 0 if so, 1 if not (for exec probes).",
        discussion: """
            Reads /readyz (or /healthz with --live) from the status server of an alertd run on this machine, at \
            --http-address or $ALERTD_HTTP_ADDRESS. Ready means the database answers and LISTEN is active. Prints the \
            answer; exit status 0 for 200, 1 for anything else, including no answer.
            """
    )

    @Option(name: .customLong("http-address"), help: "The status server's HOST:PORT ($ALERTD_HTTP_ADDRESS).")
    var httpAddress: String?

    @Flag(help: "Only ask whether the process is alive (/healthz), not whether it is ready.")
    var live = false

    @Option(help: "How long to wait for the answer, such as 2s or 500ms.")
    var timeout = "5s"

    func run() async throws {
        let answer: StatusProbe.Answer
        do {
            guard let text = httpAddress ?? ProcessInfo.processInfo.environment["ALERTD_HTTP_ADDRESS"], !text.isEmpty else {
                throw AlertdError(.configuration, "No status server address: pass --http-address HOST:PORT or set ALERTD_HTTP_ADDRESS, as for alertd run.")
            }
            let address = try StatusAddress(text)
            guard let wait = AlertdConfiguration.parseDuration(timeout), wait > .zero else {
                throw AlertdError(.configuration, "--timeout: \"\(timeout)\" is not a duration such as 500ms or 5s.")
            }
            answer = try await StatusProbe.get(live ? "/healthz" : "/readyz", from: address, timeout: wait)
        } catch {
            throw reportFailure(error)
        }
        print(answer.body.trimmingCharacters(in: .whitespacesAndNewlines))
        if answer.status != 200 { throw ExitCode.failure }
    }
}
