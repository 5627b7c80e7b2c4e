import Logging
import ServiceLifecycle

/// Serves /healthz, /readyz and /metrics (`ALERTD_HTTP_ADDRESS`) from the start, before the
/// database answers, until every other service has stopped.
final class StatusService: Service {
    private let address: StatusAddress
    private let metrics: DispatcherMetrics
    private let logger: Logger

    init(address: StatusAddress, metrics: DispatcherMetrics, logger: Logger) {
        self.address = address
        self.metrics = metrics
        self.logger = logger
    }

    func run() async throws {
        let metrics = self.metrics
        let server = try StatusServer.start(on: address) { path in metrics.respond(to: path) }
        logger.info("serving /healthz, /readyz and /metrics", metadata: ["address": "http://\(server.address)"])
        try? await gracefulShutdown()
        server.stop()
        await server.stopped()
    }
}
