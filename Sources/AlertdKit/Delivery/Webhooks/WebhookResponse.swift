import Foundation

/// What a webhook receiver answered, or why there was no answer.
public enum WebhookResponse: Sendable, Equatable {
    /// The receiver answered with an HTTP status.
    case answered(status: Int, retryAfter: String?, body: String)
    /// No answer: the connection could not be made, broke, or timed out.
    case transportFailed(reason: String, timedOut: Bool)
    /// alertd refused to send it (a URL it will not call, say).
    case refused(reason: String)
}

extension WebhookResponse {
    /// Retry-After values are honoured within these bounds, so a receiver cannot make alertd wait
    /// for days, nor hammer it by asking for zero.
    public static let retryAfterBounds: ClosedRange<Duration> = .seconds(1) ... .seconds(3600)

    /// 2xx delivered; 429, 502, 503, 504, timeouts and connection errors retried (honouring
    /// Retry-After); 410 and other 4xx final; 3xx a failure, since redirects are not followed.
    public func decision(now: Date = Date()) -> DeliveryDecision {
        switch self {
        case .refused(let reason):
            return .failed(reason: reason)
        case .transportFailed(let reason, _):
            return .retry(reason: reason, notBefore: nil)
        case .answered(let status, let retryAfter, let body):
            let summary = body.isEmpty ? "HTTP \(status)" : "HTTP \(status): \(body)"
            switch status {
            case 200..<300:
                return .delivered
            case 429, 502, 503, 504:
                let wait = retryAfter.flatMap { Self.parseRetryAfter($0, now: now) }
                return .retry(reason: summary, notBefore: wait)
            case 500..<600:
                return .retry(reason: summary, notBefore: nil)
            case 300..<400:
                return .failed(reason: "\(summary) (redirects are not followed; configure the final URL)")
            case 410:
                return .failed(reason: "\(summary) (the receiver says this endpoint is gone)")
            default:
                return .failed(reason: summary)
            }
        }
    }

    /// The decision for a message in `format`: a chat service's answers are read by its own
    /// documentation (Slack: 200 `ok`; 403 `action_prohibited`, 404 `no_service`, 410
    /// `channel_is_archived` say the webhook posts nowhere any more: final, and the URL disabled).
    public func decision(format: WebhookFormat, now: Date = Date()) -> DeliveryDecision {
        if format == .slack, case .answered(let status, _, let body) = self, Self.slackGone.contains(status) {
            return .failed(reason: "HTTP \(status)\(body.isEmpty ? "" : ": \(body)") (Slack says this webhook posts nowhere any more: its channel was archived or deleted, or its app removed; create a new incoming webhook)")
        }
        return decision(now: now)
    }

    /// What the answer says of the receiver's health, for a message in `format`.
    public func signal(format: WebhookFormat, now: Date = Date()) -> DestinationSignal? {
        if format == .slack, case .answered(let status, _, let body) = self, Self.slackGone.contains(status) {
            return .gone(reason: body.isEmpty ? "HTTP \(status)" : "HTTP \(status): \(body.prefix(500))")
        }
        return signal(now: now)
    }

    /// Slack's answers that say the webhook is gone for good.
    static let slackGone: Set<Int> = [403, 404, 410]

    /// What the answer says of the receiver's health; nil when alertd did not try (a URL it
    /// refuses says nothing of the receiver).
    public func signal(now: Date = Date()) -> DestinationSignal? {
        switch self {
        case .refused:
            return nil
        case .transportFailed(let reason, _):
            return .unavailable(reason: reason, httpStatus: nil, retryAfter: nil)
        case .answered(let status, let retryAfter, let body):
            let summary = body.isEmpty ? "HTTP \(status)" : "HTTP \(status): \(body.prefix(500))"
            switch status {
            case 200..<300: return .reached
            case 410: return .gone(reason: summary)
            case 429, 500..<600: return .unavailable(reason: summary, httpStatus: status, retryAfter: retryAfter.flatMap { Self.parseRetryAfter($0, now: now) })
            default: return .refused(reason: summary, httpStatus: status)
            }
        }
    }

    /// Reads `Retry-After` as seconds or an HTTP date, clamped to `retryAfterBounds`; nil if it
    /// is neither.
    public static func parseRetryAfter(_ value: String, now: Date = Date()) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        let seconds: Double
        if let whole = Int(text), whole >= 0 {
            seconds = Double(whole)
        } else if let date = httpDate(text) {
            seconds = date.timeIntervalSince(now)
        } else {
            return nil
        }
        let wait = Duration.milliseconds(Int64(max(seconds, 0) * 1000))
        return min(max(wait, retryAfterBounds.lowerBound), retryAfterBounds.upperBound)
    }

    /// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP requires senders to use.
    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.date(from: text)
    }
}
