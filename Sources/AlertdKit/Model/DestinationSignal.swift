/// What one attempt showed of its destination's health (`DestinationStore.report`): not of the
/// message, of the place it went.
public enum DestinationSignal: Sendable, Equatable {
    /// It answered and took the message (2xx; an SMTP session that ran to its end).
    case reached
    /// It could not take anything now: no connection, a timeout, a 5xx or a 429 (and how long it
    /// asked to be left alone, by `Retry-After`). What opens a circuit.
    case unavailable(reason: String, httpStatus: Int?, retryAfter: Duration?)
    /// It answered but refused this message for good (a 4xx): it is up, and failing.
    case refused(reason: String, httpStatus: Int)
    /// 410 Gone: the receiver says the endpoint no longer exists. The URL is disabled.
    case gone(reason: String)

    /// `alertd_destinations` words: reached, unavailable, refused, gone.
    var kind: String {
        switch self {
        case .reached: "reached"
        case .unavailable: "unavailable"
        case .refused: "refused"
        case .gone: "gone"
        }
    }

    var reason: String? {
        switch self {
        case .reached: nil
        case .unavailable(let reason, _, _), .refused(let reason, _), .gone(let reason): reason
        }
    }

    var httpStatus: Int? {
        switch self {
        case .reached: nil
        case .unavailable(_, let status, _): status
        case .refused(_, let status): status
        case .gone: 410
        }
    }

    var retryAfter: Duration? {
        if case .unavailable(_, _, let wait) = self { return wait }
        return nil
    }
}
