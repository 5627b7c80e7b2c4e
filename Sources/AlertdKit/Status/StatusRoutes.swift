import Foundation

extension DispatcherMetrics {
    /// The status server's answers: /healthz, /readyz and /metrics.
    public func respond(to path: String) -> StatusServer.Response {
        switch path {
        case "/healthz", "/livez":
            return StatusServer.Response(status: 200, body: "ok\n")
        case "/readyz":
            let readiness = currentReadiness
            return readiness.isReady
                ? StatusServer.Response(status: 200, body: "ready\n")
                : StatusServer.Response(status: 503, body: "not ready: " + readiness.problems.joined(separator: "; ") + "\n")
        case "/metrics":
            return StatusServer.Response(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: prometheusText())
        case "/":
            return StatusServer.Response(status: 200, body: "alertd \(AlertdVersion.string): /healthz /readyz /metrics\n")
        default:
            return StatusServer.Response(status: 404, body: "not found; try /healthz, /readyz or /metrics\n")
        }
    }
}
