/// Why an SMTP session failed, in words a person can act on: one reason for each thing that can
/// go wrong, never a bare library error number.
public struct SMTPSessionFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable, CaseIterable {
        case cannotConnect = "cannot_connect"
        case certificateNotTrusted = "certificate_not_trusted"
        case certificateForAnotherHost = "certificate_for_another_host"
        case noStartTLS = "no_starttls"
        case loginRefused = "login_refused"
        case noUsableLogin = "no_usable_login"
        case timedOut = "timeout"
        case closedByServer = "closed_by_server"
        case sessionRefused = "session_refused"
        case other
    }

    public let reason: Reason
    public let message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { message }
}
