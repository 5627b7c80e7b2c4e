/// What to do with an alert after one attempt, as the receiver's answer (HTTP status, SMTP
/// replies) says, before the retry policy counts attempts.
public enum DeliveryDecision: Sendable, Equatable {
    case delivered
    /// Try again later, no sooner than `notBefore` if the receiver asked for that.
    case retry(reason: String, notBefore: Duration?)
    /// Do not try again.
    case failed(reason: String)
}
