import AlertdSupport
import CAlertdShims
import CCurl
import Foundation

/// One webhook POST.
public struct WebhookRequest: Sendable {
    public var url: String
    public var body: Data
    public var headers: [(name: String, value: String)]

    public init(url: String, body: Data, headers: [(name: String, value: String)]) {
        self.url = url
        self.body = body
        self.headers = headers
    }
}

/// Sends webhooks with libcurl, each on one of a few dedicated threads that keep their easy
/// handle, and with it their open connections, from one request to the next.
public final class WebhookClient: Sendable {
    public struct Settings: Sendable {
        public var connectTimeout: Duration = .seconds(5)
        public var totalTimeout: Duration = .seconds(15)
        /// How much of a response body is kept, for the audit.
        public var responseBodyLimit = 2048
        public var userAgent = "alertd/\(AlertdVersion.string)"
        /// A CA bundle to trust instead of the system's.
        public var caFile: String?
        public var concurrency = 4
        /// Which addresses may be called, checked on the resolved address at connect time.
        public var policy = DestinationPolicy()

        public init() {}
    }

    private let settings: Settings
    private let lanes: [Lane]
    private let next = LaneCounter()

    public init(settings: Settings) {
        Self.initialiseCurl
        self.settings = settings
        self.lanes = (0..<max(settings.concurrency, 1)).map { Lane(name: "alertd-http-\($0)") }
    }

    deinit {
        for lane in lanes { lane.close() }
    }

    /// curl_global_init is not thread-safe: run it once, before any handle exists.
    private static let initialiseCurl: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    /// Sends `request` and reports what the receiver said.
    public func send(_ request: WebhookRequest) async -> WebhookResponse {
        guard let components = URLComponents(string: request.url), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            return .refused(reason: "Only http and https webhook URLs with a host are allowed.")
        }
        if components.user != nil || components.password != nil || request.url.contains("[redacted]@") {
            return .refused(reason: "The webhook URL carries a user name or password, which alertd does not send; have the receiver verify the webhook signature instead.")
        }
        let lane = lanes[next.take() % lanes.count]
        let settings = self.settings
        do {
            return try await lane.worker.run { lane.perform(request, settings: settings) }
        } catch {
            return .transportFailed(reason: "alertd is shutting down", timedOut: false)
        }
    }

    /// A thread and the easy handle that only it uses.
    final class Lane: @unchecked Sendable {
        // Invariant: `handle` is used only by jobs on `worker`, one at a time.
        let worker: BlockingWorker
        private var handle: UnsafeMutableRawPointer?

        init(name: String) {
            worker = BlockingWorker(name: name)
        }

        func close() {
            worker.submit { [self] in
                if let handle { curl_easy_cleanup(handle) }
                handle = nil
            }
            worker.shutdown()
        }

        func perform(_ request: WebhookRequest, settings: Settings) -> WebhookResponse {
            if handle == nil { handle = curl_easy_init() }
            guard let handle else { return .transportFailed(reason: "libcurl could not create a handle", timedOut: false) }
            // Keep the connection cache, forget the last request's options.
            curl_easy_reset(handle)

            let host = URLComponents(string: request.url)?.host?.trimmingCharacters(in: CharacterSet(charactersIn: "[]")) ?? ""
            let capture = ResponseCapture(limit: settings.responseBodyLimit, policy: settings.policy, host: host)
            var headers: UnsafeMutablePointer<curl_slist>?
            for header in request.headers {
                headers = curl_slist_append(headers, "\(header.name): \(header.value)")
            }
            // libcurl would otherwise send "Expect: 100-continue" for larger bodies and wait.
            headers = curl_slist_append(headers, "Expect:")
            defer { curl_slist_free_all(headers) }

            alertd_curl_easy_setopt_string(handle, CURLOPT_URL, request.url)
            alertd_curl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
            alertd_curl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
            // No proxy from the environment: through a proxy, the address check below would see
            // the proxy's address instead of the receiver's.
            alertd_curl_easy_setopt_string(handle, CURLOPT_PROXY, "")
            alertd_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            alertd_curl_easy_setopt_long(handle, CURLOPT_POST, 1)
            alertd_curl_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count))
            request.body.withUnsafeBytes { bytes in
                // COPYPOSTFIELDS: libcurl keeps its own copy of the body for the transfer.
                _ = alertd_curl_easy_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
            alertd_curl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, headers)
            alertd_curl_easy_setopt_string(handle, CURLOPT_USERAGENT, settings.userAgent)
            alertd_curl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(settings.connectTimeout.seconds * 1000))
            alertd_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(settings.totalTimeout.seconds * 1000))
            if let caFile = settings.caFile { alertd_curl_easy_setopt_string(handle, CURLOPT_CAINFO, caFile) }
            alertd_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
            alertd_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)

            // The capture lives on this stack frame for the whole of curl_easy_perform, which is
            // the only time libcurl calls the callbacks that read it.
            let context = Unmanaged.passUnretained(capture).toOpaque()
            alertd_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
            alertd_curl_easy_setopt_write_function(handle) { data, size, count, context in
                guard let data, let context else { return 0 }
                let capture = Unmanaged<ResponseCapture>.fromOpaque(context).takeUnretainedValue()
                capture.appendBody(UnsafeRawBufferPointer(start: data, count: size * count))
                return size * count
            }
            alertd_curl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
            alertd_curl_easy_setopt_header_function(handle) { data, size, count, context in
                guard let data, let context else { return 0 }
                let capture = Unmanaged<ResponseCapture>.fromOpaque(context).takeUnretainedValue()
                capture.readHeader(UnsafeRawBufferPointer(start: data, count: size * count))
                return size * count
            }

            // Every connection libcurl opens passes the destination policy, on the resolved address.
            alertd_curl_easy_setopt_pointer(handle, CURLOPT_OPENSOCKETDATA, context)
            alertd_curl_easy_setopt_opensocket_function(handle) { context, _, address in
                guard let context, let address else { return CURL_SOCKET_BAD }
                let capture = Unmanaged<ResponseCapture>.fromOpaque(context).takeUnretainedValue()
                let family = address.pointee.family
                let socketAddress = UnsafeMutableRawPointer(address).advanced(by: MemoryLayout<curl_sockaddr>.offset(of: \.addr)!)
                let bytes: [UInt8]
                switch family {
                case AF_INET:
                    bytes = withUnsafeBytes(of: socketAddress.load(as: sockaddr_in.self).sin_addr) { Array($0) }
                case AF_INET6:
                    bytes = withUnsafeBytes(of: socketAddress.load(as: sockaddr_in6.self).sin6_addr) { Array($0) }
                default:
                    capture.refusal = "The webhook URL's host \(capture.host) resolves to an address of family \(family), which alertd does not call."
                    return CURL_SOCKET_BAD
                }
                if let refusal = capture.policy.refusal(host: capture.host, address: bytes) {
                    capture.refusal = refusal
                    return CURL_SOCKET_BAD
                }
                return socket(family, address.pointee.socktype, address.pointee.protocol)
            }

            let code = curl_easy_perform(handle)
            withExtendedLifetime(capture) {}
            if let refusal = capture.refusal {
                return .refused(reason: refusal)
            }
            guard code == CURLE_OK else {
                let reason = String(cString: curl_easy_strerror(code))
                return .transportFailed(reason: reason, timedOut: code == CURLE_OPERATION_TIMEDOUT)
            }
            var status = 0
            alertd_curl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
            return .answered(status: status, retryAfter: capture.retryAfter, body: capture.bodyText)
        }
    }

    /// What the callbacks collect of a response: its start, and Retry-After.
    final class ResponseCapture {
        private let limit: Int
        private var body = Data()
        private(set) var retryAfter: String?
        let policy: DestinationPolicy
        let host: String
        /// Set when the destination policy refused a connection.
        var refusal: String?

        init(limit: Int, policy: DestinationPolicy, host: String) {
            self.limit = limit
            self.policy = policy
            self.host = host
        }

        func appendBody(_ bytes: UnsafeRawBufferPointer) {
            let room = limit - body.count
            if room > 0 { body.append(contentsOf: bytes.prefix(room)) }
        }

        func readHeader(_ bytes: UnsafeRawBufferPointer) {
            let line = String(decoding: bytes, as: UTF8.self)
            if line.hasPrefix("HTTP/") { retryAfter = nil } // a new response (after 100 Continue, say)
            guard let colon = line.firstIndex(of: ":") else { return }
            if line[..<colon].lowercased() == "retry-after" {
                retryAfter = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }

        /// The body as text, control characters folded to spaces, for a single-line audit entry.
        var bodyText: String {
            String(decoding: body, as: UTF8.self)
                .map { $0.isNewline || ($0.asciiValue.map { $0 < 0x20 } ?? false) ? " " : String($0) }
                .joined()
                .trimmingCharacters(in: .whitespaces)
        }
    }

    /// Hands out lanes in turn.
    final class LaneCounter: @unchecked Sendable {
        // Invariant: `value` is read and written with `lock` held.
        private let lock = NSLock()
        private var value = 0

        func take() -> Int {
            lock.lock()
            defer { lock.unlock() }
            value &+= 1
            return value & Int.max
        }
    }
}
