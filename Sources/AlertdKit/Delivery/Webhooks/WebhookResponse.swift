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
    /// Discord: 204 delivered; 404 `Unknown Webhook` and 401 `Invalid Webhook Token` final, and the
    /// URL disabled; 429 retried after the body's `retry_after` (seconds) when it asks longer than
    /// `Retry-After`. Teams' Workflows: 202 delivered (accepted: the workflow posts the card
    /// after), 404 (no such workflow) final and the URL disabled. Google Chat: 200 delivered, 404
    /// (no such space or webhook) final and the URL disabled. 429 and 5xx are retried for all.
    public func decision(format: WebhookFormat, now: Date = Date()) -> DeliveryDecision {
        if case .answered(let status, _, let body) = self, let gone = Self.gone(format, status) {
            return .failed(reason: "HTTP \(status)\(body.isEmpty ? "" : ": \(body.prefix(500))") (\(gone))")
        }
        if format == .discord, case .answered(429, let retryAfter, let body) = self, let wait = Self.discordRetryAfter(body) {
            return .retry(reason: "HTTP 429: \(body.prefix(500))", notBefore: max(wait, retryAfter.flatMap { Self.parseRetryAfter($0, now: now) } ?? .zero))
        }
        return decision(now: now)
    }

    /// What the answer says of the receiver's health, for a message in `format`.
    public func signal(format: WebhookFormat, now: Date = Date()) -> DestinationSignal? {
        if case .answered(let status, _, let body) = self, Self.gone(format, status) != nil {
            return .gone(reason: body.isEmpty ? "HTTP \(status)" : "HTTP \(status): \(body.prefix(500))")
        }
        if format == .discord, case .answered(429, let retryAfter, let body) = self, let wait = Self.discordRetryAfter(body) {
            return .unavailable(reason: "HTTP 429: \(body.prefix(500))", httpStatus: 429, retryAfter: max(wait, retryAfter.flatMap { Self.parseRetryAfter($0, now: now) } ?? .zero))
        }
        return signal(now: now)
    }

    /// Why a chat service's answer means its webhook is gone for good; nil when it does not.
    static func gone(_ format: WebhookFormat, _ status: Int) -> String? {
        switch (format, status) {
        case (.slack, 403), (.slack, 404), (.slack, 410):
            "Slack says this webhook posts nowhere any more: its channel was archived or deleted, or its app removed; create a new incoming webhook"
        case (.discord, 401), (.discord, 404):
            "Discord says this webhook does not exist any more: it was deleted, or its token is wrong; create a new one in the channel's Integrations"
        case (.teams, 404):
            "Power Automate says this workflow does not exist any more: it was deleted, or its URL changed; create a new one with Teams' Workflows app"
        case (.googleChat, 404):
            "Google Chat says this space or webhook does not exist any more; register a new incoming webhook in the space"
        default: nil
        }
    }

    /// Discord's `retry_after` (seconds, in the JSON body of a 429), within `retryAfterBounds`.
    static func discordRetryAfter(_ body: String) -> Duration? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let seconds = (object["retry_after"] as? NSNumber)?.doubleValue, seconds >= 0 else { return nil }
        let wait = Duration.milliseconds(Int64((seconds * 1000).rounded(.up)))
        return min(max(wait, retryAfterBounds.lowerBound), retryAfterBounds.upperBound)
    }

    /// What the answer says of the receiver's health; nil when alertd did not try (a URL it
    /// refuses says nothing of the receiver).
    public func signal(now: Date = Date()) -> DestinationSignal? {
        switch self {
        case .refused:
            return nil
        case .transportFailed(let reason, _):
            // A transfer alertd cut short at shutdown says nothing of the receiver.
            return reason.contains("alertd is shutting down") ? nil : .unavailable(reason: reason, httpStatus: nil, retryAfter: nil)
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
