@testable import AlertdKit
import AlertdTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The status server (/healthz, /readyz, /metrics) and what it serves, on real sockets.
@Suite struct StatusServerTests {
    @Test func addressesParseAsOperatorsWriteThem() throws {
        #expect(try StatusAddress("127.0.0.1:9464") == StatusAddress(host: "127.0.0.1", port: 9464))
        #expect(try StatusAddress("[::1]:9464") == StatusAddress(host: "::1", port: 9464))
        #expect(try StatusAddress(":9464") == StatusAddress(host: nil, port: 9464))
        #expect(try StatusAddress("localhost:0").port == 0)
        #expect(try StatusAddress(":9464").local == StatusAddress(host: "127.0.0.1", port: 9464))
        #expect(try StatusAddress("[::1]:80").description == "[::1]:80")
        for bad in ["9464", "127.0.0.1", "127.0.0.1:http", "host:70000", "::1:9464", "[::1]9464", "a b:1", "x/y:1"] {
            #expect(throws: AlertdError.self, "\(bad)") { try StatusAddress(bad) }
        }
    }

    @Test func aBadAddressIsAConfigurationProblem() {
        #expect {
            try AlertdConfiguration.load(flags: ["ALERTD_HTTP_ADDRESS": "9464"], environment: ["ALERTD_DATABASE_URL": "dbname=x"], sqlDirectory: nil)
        } throws: { error in
            "\(error)".contains("ALERTD_HTTP_ADDRESS") && "\(error)".contains("HOST:PORT")
        }
    }

    @Test func metricsAreThePrometheusTextFormat() throws {
        let metrics = DispatcherMetrics()
        let alert = UUID()
        let created = Date(timeIntervalSinceNow: -3)
        metrics.delivered(AttemptOutcome(alertID: alert, attempt: 1, result: .retry, startedAt: Date(), duration: .milliseconds(30)), channel: .webhook, createdAt: created)
        metrics.delivered(AttemptOutcome(alertID: alert, attempt: 2, result: .sent, startedAt: Date(), duration: .milliseconds(4)), channel: .webhook, createdAt: created)
        metrics.delivered(AttemptOutcome(alertID: UUID(), attempt: 1, result: .bounced, startedAt: Date(), duration: .milliseconds(700)), channel: .email, createdAt: created)
        metrics.setQueue(.init(pending: ["email": 7], oldestDueAge: ["email": 12.5]))
        let samples = try Self.parse(metrics.prometheusText())
        #expect(samples[#"alertd_deliveries_total{channel="webhook",outcome="retry"}"#] == 1)
        #expect(samples[#"alertd_deliveries_total{channel="webhook",outcome="sent"}"#] == 1)
        #expect(samples[#"alertd_deliveries_total{channel="email",outcome="bounced"}"#] == 1)
        #expect(samples[#"alertd_deliveries_total{channel="email",outcome="sent"}"#] == 0)
        #expect(samples[#"alertd_delivery_attempts_total{channel="webhook"}"#] == 2)
        #expect(samples[#"alertd_final_failures_total{channel="email"}"#] == 1)
        #expect(samples[#"alertd_final_failures_total{channel="webhook"}"#] == 0)
        // Buckets are cumulative: 4 ms is under 5 ms, 30 ms under 50 ms, both under +Inf.
        #expect(samples[#"alertd_delivery_duration_seconds_bucket{channel="webhook",le="0.005"}"#] == 1)
        #expect(samples[#"alertd_delivery_duration_seconds_bucket{channel="webhook",le="0.025"}"#] == 1)
        #expect(samples[#"alertd_delivery_duration_seconds_bucket{channel="webhook",le="0.05"}"#] == 2)
        #expect(samples[#"alertd_delivery_duration_seconds_bucket{channel="webhook",le="+Inf"}"#] == 2)
        #expect(samples[#"alertd_delivery_duration_seconds_count{channel="webhook"}"#] == 2)
        #expect(abs((samples[#"alertd_delivery_duration_seconds_sum{channel="webhook"}"#] ?? 0) - 0.034) < 0.000_001)
        // Latency counts the alert sent, from its creation: about 3 s.
        #expect(samples[#"alertd_alert_latency_seconds_count{channel="webhook"}"#] == 1)
        #expect(samples[#"alertd_alert_latency_seconds_bucket{channel="webhook",le="2.5"}"#] == 0)
        #expect(samples[#"alertd_alert_latency_seconds_bucket{channel="webhook",le="5"}"#] == 1)
        #expect(samples[#"alertd_alerts_pending{channel="email"}"#] == 7)
        #expect(samples[#"alertd_alerts_pending{channel="webhook"}"#] == 0)
        #expect(samples[#"alertd_oldest_due_alert_age_seconds{channel="email"}"#] == 12.5)
        #expect(samples["alertd_ready"] == 0)
    }

    /// Every metric docs/operations.md lists is served, with its labels, a HELP line and a TYPE
    /// line of the type the table gives.
    @Test func everyDocumentedMetricIsServedWithItsHelpTypeAndLabels() throws {
        let metrics = DispatcherMetrics()
        metrics.setQueue(.init(pending: [:], oldestDueAge: [:]))
        let text = metrics.prometheusText()
        let samples = try Self.parse(text)
        let table = try String(contentsOf: TestPostgres.packageRoot.appending(path: "docs/operations.md"), encoding: .utf8)
            .components(separatedBy: "### What each metric means")[1].components(separatedBy: "\n\n")[1]
        var documented = 0
        for row in table.split(separator: "\n") where row.hasPrefix("| `alertd_") {
            let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            let type = cells[1].hasSuffix("s") ? String(cells[1].dropLast()) : cells[1]
            // `name{label, label}`, `name`: the backquoted items of the first cell.
            for metric in cells[0].components(separatedBy: "`").enumerated().filter({ $0.offset % 2 == 1 }).map(\.element) {
                let name = metric.components(separatedBy: "{")[0]
                let labels = metric.contains("{") ? metric.components(separatedBy: "{")[1].trimmingCharacters(in: CharacterSet(charactersIn: "}")).components(separatedBy: ", ") : []
                documented += 1
                #expect(text.contains("# HELP \(name) "), "\(name) has no HELP line")
                #expect(text.contains("# TYPE \(name) \(type)\n"), "\(name) is not a \(type)")
                let series = samples.keys.filter { $0.hasPrefix(name + "{") || $0 == name || $0.hasPrefix(name + "_") }
                #expect(!series.isEmpty, "\(name) is not served")
                for label in labels {
                    #expect(series.contains { $0.contains("{\(label)=\"") || $0.contains(",\(label)=\"") }, "\(name) has no label \(label)")
                }
            }
        }
        #expect(documented == 31)
    }

    @Test func readinessNamesWhatIsMissing() {
        let metrics = DispatcherMetrics()
        #expect(metrics.respond(to: "/readyz").status == 503)
        #expect(metrics.respond(to: "/readyz").body.contains("not connected yet"))
        #expect(metrics.respond(to: "/readyz").body.contains("LISTEN"))
        metrics.setDatabaseError(nil)
        metrics.setListening(true)
        #expect(metrics.respond(to: "/readyz") == StatusServer.Response(status: 200, body: "ready\n"))
        // The relay's circuit open: email waits, and readiness says so until it closes.
        var destinations = DispatcherMetrics.DestinationState()
        destinations.relay = "smtp://mail.example.com:587, failing since 2026-11-27T10:00:00Z: Connection refused"
        metrics.setDestinations(destinations)
        #expect(metrics.respond(to: "/readyz").body == "not ready: email: the SMTP relay is unavailable (smtp://mail.example.com:587, failing since 2026-11-27T10:00:00Z: Connection refused); email alerts wait behind its circuit, one probe at a time\n")
        metrics.setDestinations(DispatcherMetrics.DestinationState())
        #expect(metrics.respond(to: "/readyz").status == 200)
        metrics.setListening(false)
        #expect(metrics.respond(to: "/readyz").body == "not ready: LISTEN alertd is not active (connecting or reconnecting)\n")
        metrics.setListening(true, reconnected: true)
        metrics.setStopping()
        #expect(metrics.respond(to: "/readyz").status == 503)
        #expect(metrics.respond(to: "/healthz").status == 200)
        #expect(metrics.respond(to: "/nope").status == 404)
    }

    @Test func theServerAnswersGetAndHeadAndRefusesTheRest() async throws {
        let server = try StatusServer.start(on: StatusAddress(host: "127.0.0.1", port: 0)) { path in
            path == "/healthz" ? .init(status: 200, body: "ok\n") : .init(status: 404, body: "no\n")
        }
        defer { server.stop() }
        #expect(server.address.port > 0)
        let ok = try await StatusProbe.get("/healthz?verbose=1", from: server.address, timeout: .seconds(5))
        #expect(ok == StatusProbe.Answer(status: 200, body: "ok\n"))
        #expect(try await StatusProbe.get("/other", from: server.address, timeout: .seconds(5)).status == 404)
        let head = try Self.exchange("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n", port: server.address.port)
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n") && head.contains("Content-Length: 3\r\n") && head.hasSuffix("\r\n\r\n"))
        let post = try Self.exchange("POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n", port: server.address.port)
        #expect(post.hasPrefix("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD\r\n"))
        let garbage = try Self.exchange("hello\r\n\r\n", port: server.address.port)
        #expect(garbage.hasPrefix("HTTP/1.1 400 "))
        let long = try Self.exchange("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 10_000), port: server.address.port)
        #expect(long.hasPrefix("HTTP/1.1 431 "))
    }

    /// A client that connects and never sends its request does not hold up anyone else.
    @Test func aSilentClientHoldsUpNobody() async throws {
        let server = try StatusServer.start(on: StatusAddress(host: "127.0.0.1", port: 0)) { _ in .init(status: 200, body: "ok\n") }
        defer { server.stop() }
        let silent = try (0..<5).map { _ in try Self.connect(port: server.address.port) }
        defer { silent.forEach { close($0) } }
        #expect(try await StatusProbe.get("/healthz", from: server.address, timeout: .seconds(5)).status == 200)
    }

    @Test func anAddressInUseIsAClearError() throws {
        let first = try StatusServer.start(on: StatusAddress(host: "127.0.0.1", port: 0)) { _ in .init(status: 200, body: "") }
        defer { first.stop() }
        #expect {
            try StatusServer.start(on: first.address) { _ in .init(status: 200, body: "") }
        } throws: { error in
            "\(error)".contains("127.0.0.1:\(first.address.port)") && "\(error)".contains("in use")
        }
    }

    @Test func theProbeSaysWhenNothingAnswers() async throws {
        // A port held bound but not listening: connections to it are refused, and no other test
        // running meanwhile can take it (a port a stopped server let go of, another one could).
        let (fd, port) = try Self.bindWithoutListening()
        defer { close(fd) }
        await #expect {
            try await StatusProbe.get("/readyz", from: StatusAddress(host: "127.0.0.1", port: port), timeout: .seconds(2))
        } throws: { error in
            "\(error)".contains("No answer from alertd's status server") && "\(error)".contains("refused")
        }
    }

    // MARK: Helpers

    /// "name{labels}" → value, for every sample line; fails on a line that is not a sample.
    static func parse(_ text: String) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let value = Double(parts[1] == "+Inf" ? "inf" : String(parts[1])) else {
                throw TestSetupError("not a sample line: \(line)")
            }
            let series = Self.normalisingBucketBounds(String(parts[0]))
            #expect(samples[series] == nil, "sample twice: \(parts[0])")
            samples[series] = value
        }
        return samples
    }

    /// A histogram's bucket bound as a number, written the shortest way (`le="5.0"` is
    /// `le="5"`): Prometheus reads the bound as a float.
    static func normalisingBucketBounds(_ series: String) -> String {
        guard let start = series.range(of: "le=\""), let end = series[start.upperBound...].firstIndex(of: "\"") else { return series }
        let bound = String(series[start.upperBound..<end])
        guard let value = Double(bound), value.isFinite else { return series }
        let written = value == value.rounded() ? String(Int64(value)) : String(value)
        return series.replacingCharacters(in: start.upperBound..<end, with: written)
    }

    /// A TCP socket bound to a free loopback port, not listening; and the port.
    static func bindWithoutListening() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            close(fd)
            throw TestSetupError("cannot bind a loopback port")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw TestSetupError("cannot connect to 127.0.0.1:\(port)")
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends `request` raw and reads until the server closes.
    static func exchange(_ request: String, port: Int) throws -> String {
        let fd = try connect(port: port)
        defer { close(fd) }
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }
}
