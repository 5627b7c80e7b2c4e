import Logging
import ServiceLifecycle

/// Reads how many alerts are pending and how long the oldest due one has waited, every
/// `interval`, for /metrics. Runs only when something serves them (`ALERTD_HTTP_ADDRESS`).
final class QueueReader: Service {
    private let connection: SharedConnection
    private let instance: String
    private let metrics: DispatcherMetrics
    private let logger: Logger

    /// How often /metrics' queue figures are read from the database.
    static let interval: Duration = .seconds(5)

    init(connection: SharedConnection, instance: String, metrics: DispatcherMetrics, logger: Logger) {
        self.connection = connection
        self.instance = instance
        self.metrics = metrics
        self.logger = logger
    }

    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let store = AlertStore(connection: try await self.connection.get(), worker: self.instance)
                    self.metrics.setQueue(try await store.queueState())
                } catch where Task.isCancelled {
                    return
                } catch {
                    self.logger.debug("could not read the queue's size for /metrics", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: Self.interval)
            }
        }
    }
}
