import AlertdPostgres
import Logging
import ServiceLifecycle

/// Message limits' part of `alertd run`: every `interval`, writes the notices of the windows that
/// are over and held alerts (`HeldAlertStore.writeNotices`), and wakes the dispatcher to send
/// them. A notice goes at most `interval` after its window ends. It also tells the limits
/// whether the schema can record a held alert (migration 20251204): until it can, none is held.
final class HeldAlertNotices: Service {
    private let connection: SharedConnection
    private let limits: MessageLimits
    private let wake: WakeSignal
    private let logger: Logger

    static let interval: Duration = .seconds(15)

    /// How often it looks: every `interval`, or every window when windows are shorter.
    var every: Duration { min(Self.interval, limits.settings.window) }

    init(connection: SharedConnection, limits: MessageLimits, wake: WakeSignal, logger: Logger) {
        self.connection = connection
        self.limits = limits
        self.wake = wake
        self.logger = logger
    }

    func run() async {
        await cancelWhenGracefulShutdown {
            var lacksLogged = false
            var availableLogged = false
            while !Task.isCancelled {
                do {
                    guard let written = try await HeldAlertStore(connection: try await self.connection.get()).writeNotices(window: self.limits.settings.window) else {
                        self.limits.setAvailable(false)
                        if !lacksLogged {
                            self.logger.warning("the database lacks alertd's message limits (migration 20251204_alertd_message_limits): no alert is held until it is applied")
                            lacksLogged = true
                        }
                        try? await Task.sleep(for: self.every)
                        continue
                    }
                    self.limits.setAvailable(true)
                    if !availableLogged {
                        let settings = self.limits.settings
                        self.logger.info("message limits are on", metadata: [
                            "message_limit": "\(settings.limit.map(String.init) ?? "off (an integration's own message_limit still applies)")",
                            "window": "\(settings.window.settingText)",
                        ])
                        availableLogged = true
                    }
                    if written > 0 {
                        self.logger.notice("alerts were held by their integrations' message limits; one notice per integration and channel is queued", metadata: ["notices": "\(written)"])
                        self.wake.signal()
                    }
                } catch where Task.isCancelled {
                    return
                } catch {
                    self.logger.warning("could not write the notices of held alerts; trying again later", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: self.every)
            }
        }
    }
}
