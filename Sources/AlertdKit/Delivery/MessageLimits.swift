import Foundation
import Synchronization

/// The limit on messages per integration, channel and window (`ALERTD_MESSAGE_LIMIT` in each
/// `ALERTD_MESSAGE_LIMIT_WINDOW`, or the integration's own `message_limit`): a message past it is
/// held, not sent, and recorded so (`held`); when the window is over, one notice per integration
/// and channel says how many were held (`HeldAlertNotices`).
///
/// Windows are fixed, aligned to the epoch (each whole hour, for the default hour), so that every
/// instance and the notices agree on them. Counted by each instance in memory: with several
/// instances an integration may send up to the limit through each; a restart counts afresh.
public final class MessageLimits: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Messages per integration, channel and window; nil: no limit.
        public var limit: Int?
        public var window: Duration

        public static let defaultLimit = 120
        public static let defaultWindow: Duration = .seconds(3600)

        public init(limit: Int? = Self.defaultLimit, window: Duration = Self.defaultWindow) {
            self.limit = limit
            self.window = window
        }
    }

    private struct Key: Hashable {
        let integration: UUID
        let channel: Channel
    }

    private struct State {
        var windowStart: Date = .distantPast
        var sent: [Key: Int] = [:]
        /// Whether the schema can record a held alert (migration 20251204); until it is known to,
        /// nothing is held.
        var available = false
    }

    public let settings: Settings
    private let state = Mutex(State())

    public init(settings: Settings) {
        self.settings = settings
    }

    /// The start of the window `date` falls in.
    public func windowStart(_ date: Date) -> Date {
        let seconds = max(settings.window.seconds, 1)
        return Date(timeIntervalSince1970: (date.timeIntervalSince1970 / seconds).rounded(.down) * seconds)
    }

    /// Whether the schema can record a held alert (`HeldAlertNotices` finds out).
    public func setAvailable(_ available: Bool) {
        state.withLock { $0.available = available }
    }

    /// A message held, with the reason it is recorded with.
    public struct Held: Sendable {
        public let message: ClaimedAlert
        public let reason: String
        public let limit: Int
        public let windowStart: Date
    }

    /// Splits `messages` into those to send and those over their integration's limit. A message
    /// counts once, at its first attempt (its retries pass); tests and the notices of held alerts
    /// do not count, and are never held.
    public func admit(_ messages: [ClaimedAlert], now: Date = Date()) -> (send: [ClaimedAlert], held: [Held]) {
        let start = windowStart(now)
        return state.withLock { state in
            if state.windowStart != start {
                state.windowStart = start
                state.sent = [:]
            }
            var send: [ClaimedAlert] = []
            var held: [Held] = []
            for message in messages {
                guard let integration = message.integration, Self.counts(message) else {
                    send.append(message)
                    continue
                }
                let limit = message.messageLimit ?? settings.limit ?? Int.max
                let key = Key(integration: integration.id, channel: message.channel)
                let sent = state.sent[key, default: 0]
                if sent < limit || !state.available {
                    state.sent[key] = sent + 1
                    send.append(message)
                } else {
                    held.append(Held(message: message, reason: reason(message, limit: limit, windowStart: start), limit: limit, windowStart: start))
                }
            }
            return (send, held)
        }
    }

    static func counts(_ message: ClaimedAlert) -> Bool {
        message.attempt == 1 && message.origin != .test && message.origin != .limit
    }

    private func reason(_ message: ClaimedAlert, limit: Int, windowStart: Date) -> String {
        let name = message.integration.map { $0.name ?? $0.type } ?? "its integration"
        return "Held: \(name) reached its limit of \(limit) \(message.channel.rawValue) message\(limit == 1 ? "" : "s") in the \(settings.window.settingText) from \(AlertContext.timestamp(windowStart)) (ALERTD_MESSAGE_LIMIT, or message_limit in the integration's configuration_metadata -> 'alertd'). One message at the end of the window says how many were held; `alertd replay` sends this one."
    }
}
