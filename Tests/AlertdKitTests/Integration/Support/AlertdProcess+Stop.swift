import AlertdTestSupport
import Foundation
import Testing

extension AlertdProcess {
    /// Stops alertd and expects it to exit 0. Written apart from the call because `#expect`
    /// does not show the values of an expression with `await` in it: here a failure shows how
    /// alertd ended and what it printed.
    func stopExpectingExitZero(
        signal: Int32 = SIGTERM, timeout: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let ended = await stop(signal: signal, timeout: timeout)
        #expect(ended == 0, sourceLocation: sourceLocation)
    }
}
