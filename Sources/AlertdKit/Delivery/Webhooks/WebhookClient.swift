import AlertdSupport
import CAlertdShims
import CCurl
import Foundation
import ServiceLifecycle

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

/// Sends webhooks with one libcurl multi handle on a dedicated thread (`alertd-http`): many
/// transfers at once, connections kept alive and shared between them, at most
/// `Settings.concurrency` connections in all and `Settings.perHost` to any one host. A receiver
/// that never answers holds only its own transfers, until their timeout.
///
/// As a service it runs until graceful shutdown (after the dispatcher's), then stops its thread.
public final class WebhookClient: Service, Sendable {
    public struct Settings: Sendable {
        public var connectTimeout: Duration = .seconds(5)
        public var totalTimeout: Duration = .seconds(15)
        /// How much of a response body is kept, for the audit.
        public var responseBodyLimit = 2048
        public var userAgent = "alertd/\(AlertdVersion.string)"
        /// A CA bundle to trust instead of the system's.
        public var caFile: String?
        /// Connections open at once, to all receivers together.
        public var concurrency = 64
        /// Connections open at once to one host.
        public var perHost = 16
        /// Which addresses may be called, checked on the resolved address at connect time.
        public var policy = DestinationPolicy()

        public init() {}
    }

    private let settings: Settings
    private let engine: MultiEngine

    public init(settings: Settings) {
        _ = alertd_curl_global_init_once()
        self.settings = settings
        self.engine = MultiEngine(settings: settings)
    }

    deinit {
        engine.stop()
    }

    public func run() async {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Stops the transfer thread and waits until libcurl's handles are cleaned up, so that no
    /// libcurl or OpenSSL call is under way when the process exits. Later sends fail at once.
    public func shutdown() async {
        engine.stop()
        await engine.ended.wait()
    }


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
        // An IPv6 literal comes bracketed ("[::1]"); the per-host cap and the policy want it bare.
        let bareHost = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let engine = self.engine
        let settings = self.settings
        let handle = TransferHandle()
        // Cancelling the task ends its transfer at once (at shutdown, after the grace).
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let transfer = Transfer(request: request, host: bareHost, settings: settings, continuation: continuation)
                if handle.attach(transfer) {
                    engine.submit(transfer)
                } else {
                    continuation.resume(returning: Self.cancelled)
                }
            }
        } onCancel: {
            if let transfer = handle.cancel() { engine.cancel(transfer) }
        }
    }

    /// What a transfer whose task was cancelled comes back with.
    static let cancelled = WebhookResponse.transportFailed(reason: "cancelled: alertd is shutting down", timedOut: false)

    /// The transfer of one `send`, for its cancellation handler, which may run before the
    /// transfer exists.
    final class TransferHandle: @unchecked Sendable {
        // Invariant: `transfer` and `cancelled` are read and written with `lock` held.
        private let lock = NSLock()
        private var transfer: Transfer?
        private var cancelled = false

        /// Keeps `transfer`; false if the task was already cancelled (it is then not sent).
        func attach(_ transfer: Transfer) -> Bool {
            lock.withLock {
                guard !cancelled else { return false }
                self.transfer = transfer
                return true
            }
        }

        /// Marks the task cancelled; returns the transfer to end, if it was sent.
        func cancel() -> Transfer? {
            lock.withLock {
                cancelled = true
                return transfer
            }
        }
    }

    /// One request on its way: what libcurl's callbacks fill in, and whom to tell when it ends.
    final class Transfer: @unchecked Sendable {
        // Invariant: created on the caller's task, then touched only by the engine's thread.
        let request: WebhookRequest
        let capture: ResponseCapture
        let continuation: CheckedContinuation<WebhookResponse, Never>
        var headers: UnsafeMutablePointer<curl_slist>?

        init(request: WebhookRequest, host: String, settings: Settings, continuation: CheckedContinuation<WebhookResponse, Never>) {
            self.request = request
            self.capture = ResponseCapture(limit: settings.responseBodyLimit, policy: settings.policy, host: host)
            self.continuation = continuation
        }

        deinit {
            curl_slist_free_all(headers)
        }
    }

    /// The thread that owns the multi handle and every easy handle in it.
    final class MultiEngine: @unchecked Sendable {
        // Invariant: `incoming`, `stopping`, `started` and `cancelled` are read and written with `lock` held; `multi` is
        // used by the engine's thread only, except curl_multi_wakeup, which libcurl allows from
        // any thread; `running` and `spare` belong to the engine's thread.
        private let lock = NSLock()
        private var incoming: [Transfer] = []
        private var stopping = false
        private var started = false
        /// Transfers whose task was cancelled, for the thread to end.
        private var cancelled: [ObjectIdentifier] = []
        /// Happens when the thread has ended and the multi handle is gone.
        let ended = OneTimeEvent()
        private let multi: UnsafeMutableRawPointer
        private var running: [UnsafeMutableRawPointer: Transfer] = [:]
        private var spare: [UnsafeMutableRawPointer] = []
        private let settings: Settings
        /// Why the multi handle could not be set up; every transfer is then refused with it.
        private let setupRefusal: String?

        init(settings: Settings) {
            self.settings = settings
            multi = curl_multi_init()!
            // The connection limits are what keeps a slow receiver from taking every connection:
            // without them, no webhook is sent.
            let limits: [(CURLMoption, String, Int)] = [
                (CURLMOPT_MAX_TOTAL_CONNECTIONS, "CURLMOPT_MAX_TOTAL_CONNECTIONS", max(settings.concurrency, 1)),
                (CURLMOPT_MAX_HOST_CONNECTIONS, "CURLMOPT_MAX_HOST_CONNECTIONS", max(settings.perHost, 1)),
                (CURLMOPT_MAXCONNECTS, "CURLMOPT_MAXCONNECTS", max(settings.concurrency, 1)),
            ]
            setupRefusal = limits.lazy.compactMap { [multi] option, name, value in
                let code = alertd_curl_multi_setopt_long(multi, option, value)
                return code == CURLM_OK ? nil : "alertd could not set up webhooks: libcurl refused \(name) (\(String(cString: curl_multi_strerror(code))))."
            }.first
        }

        func submit(_ transfer: Transfer) {
            if let setupRefusal {
                transfer.continuation.resume(returning: .refused(reason: setupRefusal))
                return
            }
            lock.lock()
            guard !stopping else {
                lock.unlock()
                transfer.continuation.resume(returning: .transportFailed(reason: "alertd is shutting down", timedOut: false))
                return
            }
            incoming.append(transfer)
            if !started {
                // The thread starts with the first transfer, not with the client.
                started = true
                let thread = Thread { [self] in
                    BlockingWorker.nameCurrentThread("alertd-http")
                    loop()
                }
                thread.start()
            }
            lock.unlock()
            curl_multi_wakeup(multi)
        }

        /// Ends `transfer` now, answered as cancelled, if it has not ended yet.
        func cancel(_ transfer: Transfer) {
            lock.lock()
            if let index = incoming.firstIndex(where: { $0 === transfer }) {
                incoming.remove(at: index)
                lock.unlock()
                transfer.continuation.resume(returning: WebhookClient.cancelled)
                return
            }
            cancelled.append(ObjectIdentifier(transfer))
            if !ended.hasHappened { curl_multi_wakeup(multi) }
            lock.unlock()
        }

        /// Ends the thread; transfers still running are answered as failed.
        func stop() {
            lock.lock()
            stopping = true
            if !started {
                // No thread ever ran: the handle is cleaned up here.
                started = true
                curl_multi_cleanup(multi)
                ended.signal()
            }
            // Woken under the lock: once the thread has ended, the multi handle is gone.
            if !ended.hasHappened { curl_multi_wakeup(multi) }
            lock.unlock()
        }

        private func loop() {
            var stillRunning: Int32 = 0
            while true {
                lock.lock()
                let added = incoming
                incoming.removeAll(keepingCapacity: true)
                let stop = stopping
                let ending = Set(cancelled)
                cancelled.removeAll()
                lock.unlock()
                if !ending.isEmpty {
                    for (easy, transfer) in running where ending.contains(ObjectIdentifier(transfer)) {
                        running[easy] = nil
                        curl_multi_remove_handle(multi, easy)
                        curl_easy_cleanup(easy)
                        transfer.continuation.resume(returning: WebhookClient.cancelled)
                    }
                }
                if stop {
                    for transfer in added { transfer.continuation.resume(returning: .transportFailed(reason: "alertd is shutting down", timedOut: false)) }
                    break
                }
                for transfer in added { start(transfer) }
                curl_multi_perform(multi, &stillRunning)
                var left: Int32 = 0
                while let message = curl_multi_info_read(multi, &left) {
                    guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
                    finish(easy, code: alertd_curl_msg_result(message))
                }
                curl_multi_poll(multi, nil, 0, 1000, nil)
            }
            for (easy, transfer) in running {
                curl_multi_remove_handle(multi, easy)
                curl_easy_cleanup(easy)
                transfer.continuation.resume(returning: .transportFailed(reason: "alertd is shutting down", timedOut: false))
            }
            running.removeAll()
            for easy in spare { curl_easy_cleanup(easy) }
            spare.removeAll()
            // Under the lock: `stop()` wakes the handle only while it exists.
            lock.lock()
            curl_multi_cleanup(multi)
            ended.signal()
            lock.unlock()
        }

        private func start(_ transfer: Transfer) {
            guard let easy = spare.popLast() ?? curl_easy_init() else {
                transfer.continuation.resume(returning: .transportFailed(reason: "libcurl could not create a handle", timedOut: false))
                return
            }
            do {
                try configure(easy, for: transfer)
            } catch {
                curl_easy_cleanup(easy)
                transfer.continuation.resume(returning: .refused(reason: error.description))
                return
            }
            running[easy] = transfer
            let added = curl_multi_add_handle(multi, easy)
            guard added == CURLM_OK else {
                running[easy] = nil
                curl_easy_cleanup(easy)
                transfer.continuation.resume(returning: .transportFailed(reason: "libcurl could not start the transfer: \(String(cString: curl_multi_strerror(added)))", timedOut: false))
                return
            }
        }

        private func finish(_ easy: UnsafeMutableRawPointer, code: CURLcode) {
            curl_multi_remove_handle(multi, easy)
            guard let transfer = running.removeValue(forKey: easy) else { return }
            let response: WebhookResponse
            // A name may resolve to refused and allowed addresses: libcurl tries the next address
            // after a refused one, so a refusal is the outcome only when no connection was made.
            var status = 0
            alertd_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            var connected = 0
            alertd_curl_easy_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &connected)
            if let refusal = transfer.capture.refusal, status == 0, connected == 0 || code == CURLE_COULDNT_CONNECT {
                response = .refused(reason: refusal)
            } else if code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL {
                // A URL libcurl cannot use never will: final, and nothing said of a receiver.
                response = .refused(reason: "The webhook URL cannot be used: \(String(cString: curl_easy_strerror(code))).")
            } else if code != CURLE_OK {
                response = .transportFailed(reason: String(cString: curl_easy_strerror(code)), timedOut: code == CURLE_OPERATION_TIMEDOUT)
            } else {
                response = .answered(status: status, retryAfter: transfer.capture.retryAfter, body: transfer.capture.bodyText)
            }
            // A handle kept for the next transfer forgets this one's options.
            curl_easy_reset(easy)
            if spare.count < settings.concurrency { spare.append(easy) } else { curl_easy_cleanup(easy) }
            transfer.continuation.resume(returning: response)
        }

        /// Sets the transfer's options; throws naming the first libcurl refused. Every option is
        /// checked: without CURLOPT_PROTOCOLS_STR, say, a redirect to file:// would be possible.
        private func configure(_ handle: UnsafeMutableRawPointer, for transfer: Transfer) throws(OptionRefused) {
            func check(_ code: CURLcode, _ option: String) throws(OptionRefused) {
                guard code == CURLE_OK else { throw OptionRefused(option: option, code: code) }
            }
            let request = transfer.request
            for header in request.headers {
                transfer.headers = curl_slist_append(transfer.headers, "\(header.name): \(header.value)")
            }
            // libcurl would otherwise send "Expect: 100-continue" for larger bodies and wait.
            transfer.headers = curl_slist_append(transfer.headers, "Expect:")

            try check(alertd_curl_easy_setopt_string(handle, CURLOPT_URL, request.url), "CURLOPT_URL")
            try check(alertd_curl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"), "CURLOPT_PROTOCOLS_STR")
            try check(alertd_curl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0), "CURLOPT_FOLLOWLOCATION")
            // No proxy from the environment: through a proxy, the address check below would see
            // the proxy's address instead of the receiver's.
            try check(alertd_curl_easy_setopt_string(handle, CURLOPT_PROXY, ""), "CURLOPT_PROXY")
            try check(alertd_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1), "CURLOPT_NOSIGNAL")
            try check(alertd_curl_easy_setopt_long(handle, CURLOPT_POST, 1), "CURLOPT_POST")
            try check(alertd_curl_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count)), "CURLOPT_POSTFIELDSIZE_LARGE")
            let copied = request.body.withUnsafeBytes { bytes in
                // COPYPOSTFIELDS: libcurl keeps its own copy of the body for the transfer.
                alertd_curl_easy_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
            try check(copied, "CURLOPT_COPYPOSTFIELDS")
            try check(alertd_curl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, transfer.headers), "CURLOPT_HTTPHEADER")
            try check(alertd_curl_easy_setopt_string(handle, CURLOPT_USERAGENT, settings.userAgent), "CURLOPT_USERAGENT")
            try check(alertd_curl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(settings.connectTimeout.seconds * 1000)), "CURLOPT_CONNECTTIMEOUT_MS")
            try check(alertd_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(settings.totalTimeout.seconds * 1000)), "CURLOPT_TIMEOUT_MS")
            if let caFile = settings.caFile { try check(alertd_curl_easy_setopt_string(handle, CURLOPT_CAINFO, caFile), "CURLOPT_CAINFO") }
            try check(alertd_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1), "CURLOPT_SSL_VERIFYPEER")
            try check(alertd_curl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2), "CURLOPT_SSL_VERIFYHOST")

            // The capture lives in `running` until the transfer is finished, which is the only
            // time libcurl calls the callbacks that read it.
            let context = Unmanaged.passUnretained(transfer.capture).toOpaque()
            try check(alertd_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, context), "CURLOPT_WRITEDATA")
            try check(alertd_curl_easy_setopt_write_function(handle) { data, size, count, context in
                guard let data, let context else { return 0 }
                let capture = Unmanaged<ResponseCapture>.fromOpaque(context).takeUnretainedValue()
                capture.appendBody(UnsafeRawBufferPointer(start: data, count: size * count))
                return size * count
            }, "CURLOPT_WRITEFUNCTION")
            try check(alertd_curl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, context), "CURLOPT_HEADERDATA")
            try check(alertd_curl_easy_setopt_header_function(handle) { data, size, count, context in
                guard let data, let context else { return 0 }
                let capture = Unmanaged<ResponseCapture>.fromOpaque(context).takeUnretainedValue()
                capture.readHeader(UnsafeRawBufferPointer(start: data, count: size * count))
                return size * count
            }, "CURLOPT_HEADERFUNCTION")

            // Every connection libcurl opens passes the destination policy, on the resolved address.
            try check(alertd_curl_easy_setopt_pointer(handle, CURLOPT_OPENSOCKETDATA, context), "CURLOPT_OPENSOCKETDATA")
            try check(alertd_curl_easy_setopt_opensocket_function(handle) { context, _, address in
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
            }, "CURLOPT_OPENSOCKETFUNCTION")
        }
    }

    /// libcurl refused a transfer's option: the webhook is not sent, rather than sent without it.
    struct OptionRefused: Error, CustomStringConvertible {
        let option: String
        let code: CURLcode

        var description: String {
            "alertd could not set up the webhook request: libcurl refused \(option) (\(String(cString: curl_easy_strerror(code))))."
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
}
