import AlertdPostgres
import Logging
import ServiceLifecycle

/// Signing secrets' part of `alertd run` (unless ALERTD_WEBHOOK_SIGNING=shared): every
/// `interval`, deletes the secrets whose overlap after a rotation ended, and gives every
/// integration that names a webhook URL a secret of its own if it has none yet, so that its
/// tenant's admins can set up their receiver before its first webhook.
final class SigningSecretUpkeep: Service {
    private let connection: SharedConnection
    private let logger: Logger

    static let interval: Duration = .seconds(60)

    init(connection: SharedConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let done = try await SigningSecretStore(connection: try await self.connection.get()).upkeep()
                    if done.created > 0 || done.deleted > 0 {
                        self.logger.info("signing secrets kept", metadata: ["created": "\(done.created)", "retired_deleted": "\(done.deleted)"])
                    }
                } catch where Task.isCancelled {
                    return
                } catch let error as PostgresError where error.sqlState == "42P01" {
                    // undefined_table: the schema is older than 20251203 (the dispatcher says so).
                } catch {
                    self.logger.warning("could not keep the signing secrets; trying again later", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: Self.interval)
            }
        }
    }
}
