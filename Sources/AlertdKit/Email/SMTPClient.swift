import AlertdSupport
import CAlertdShims
import CESMTP
import COpenSSL
import Foundation

/// Sends email with libesmtp: one SMTP session carries a whole batch of messages, on a thread of
/// its own. Every message and every recipient comes back with the server's reply.
public final class SMTPClient: Sendable {
    /// A server reply: `250 2.0.0 OK`, say. Code 0 when there was none (the session failed first).
    public struct Reply: Sendable, Equatable, CustomStringConvertible {
        public let code: Int
        public let text: String
        public var description: String { code == 0 ? text : "\(code) \(text)" }
        public var isSuccess: Bool { (200..<300).contains(code) }
        public var isPermanentFailure: Bool { (500..<600).contains(code) }
    }

    public struct MessageResult: Sendable, Equatable {
        /// The reply to the message's data; nil if it was never sent.
        public let message: Reply?
        public let recipients: [String: Reply]
        /// Why the session failed, if it did (no connection, TLS refused, AUTH refused, ...).
        public let sessionError: String?
    }

    public let settings: SMTPSettings
    private let worker = BlockingWorker(name: "alertd-smtp")

    public init(settings: SMTPSettings) {
        Self.initialise
        self.settings = settings
    }

    deinit {
        worker.shutdown()
    }

    private static let initialise: Void = {
        auth_client_init()
    }()

    /// Sends `messages` in one session and reports on each, in order.
    public func send(_ messages: [EmailMessage]) async -> [MessageResult] {
        let settings = self.settings
        do {
            return try await worker.run { Self.sendBlocking(messages, settings: settings) }
        } catch {
            return messages.map { _ in MessageResult(message: nil, recipients: [:], sessionError: "alertd is shutting down") }
        }
    }

    /// What the AUTH callback reads; alive for the whole session.
    final class Credentials {
        let user: UnsafeMutablePointer<CChar>
        let password: UnsafeMutablePointer<CChar>

        init(user: String, password: String) {
            self.user = strdup(user)
            self.password = strdup(password)
        }

        deinit {
            free(user)
            free(password)
        }
    }

    static func sendBlocking(_ messages: [EmailMessage], settings: SMTPSettings) -> [MessageResult] {
        guard let session = smtp_create_session() else {
            return messages.map { _ in MessageResult(message: nil, recipients: [:], sessionError: "libesmtp could not create a session") }
        }
        defer { smtp_destroy_session(session) }
        smtp_set_server(session, "\(settings.host):\(settings.port)")
        let milliseconds = Int(settings.timeout.seconds * 1000)
        for which in [Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA, Timeout_TRANSFER, Timeout_DATA2] {
            _ = smtp_set_timeout(session, Int32(which.rawValue) | Timeout_OVERRIDE_RFC2822_MINIMUM, milliseconds)
        }

        // Our own TLS context: the system's CAs (or the configured file) and peer verification.
        // libesmtp checks the host name against the certificate itself and refuses a mismatch.
        var context: OpaquePointer?
        switch settings.tls {
        case .none:
            smtp_starttls_enable(session, Starttls_DISABLED)
        case .optional, .required:
            context = SSL_CTX_new(TLS_client_method())
            if let context {
                SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
                // The certificate must name the host alertd connects to; checked during the
                // handshake itself, whatever libesmtp does afterwards.
                if let parameters = SSL_CTX_get0_param(context) {
                    if Self.isIPAddress(settings.host) {
                        X509_VERIFY_PARAM_set1_ip_asc(parameters, settings.host)
                    } else {
                        X509_VERIFY_PARAM_set1_host(parameters, settings.host, 0)
                    }
                }
                if let caFile = settings.caFile {
                    SSL_CTX_load_verify_locations(context, caFile, nil)
                } else {
                    SSL_CTX_set_default_verify_paths(context)
                }
                alertd_smtp_starttls_set_ctx(session, UnsafeMutableRawPointer(context))
            }
            smtp_starttls_enable(session, settings.tls == .required ? Starttls_REQUIRED : Starttls_ENABLED)
        }
        defer { if let context { SSL_CTX_free(context) } }

        var credentials: Credentials?
        var authContext: auth_context_t?
        if let user = settings.user {
            credentials = Credentials(user: user, password: settings.password ?? "")
            authContext = auth_create_context()
            if let authContext, let credentials {
                auth_set_mechanism_flags(authContext, UInt32(AUTH_PLUGIN_PLAIN), 0)
                // The credentials object outlives the session: it is released after
                // smtp_destroy_session, at the end of this function.
                auth_set_interact_cb(authContext, { request, result, fields, argument in
                    guard let request, let result, let argument else { return 0 }
                    let credentials = Unmanaged<Credentials>.fromOpaque(argument).takeUnretainedValue()
                    for index in 0..<Int(fields) {
                        let flags = Int32(request[index].flags)
                        if flags & AUTH_USER != 0 { result[index] = credentials.user }
                        if flags & AUTH_PASS != 0 { result[index] = credentials.password }
                    }
                    return 1
                }, Unmanaged.passUnretained(credentials).toOpaque())
                alertd_smtp_auth_set_context(session, UnsafeMutableRawPointer(authContext))
            }
        }
        defer { if let authContext { auth_destroy_context(authContext) } }

        // Message texts must stay alive until smtp_start_session returns.
        var texts: [UnsafeMutablePointer<CChar>] = []
        defer { texts.forEach { free($0) } }
        var handles: [(message: smtp_message_t?, recipients: [(String, smtp_recipient_t?)])] = []
        for message in messages {
            let handle = smtp_add_message(session)
            smtp_set_reverse_path(handle, message.from)
            let recipients = message.to.map { ($0, smtp_add_recipient(handle, $0)) }
            let text = strdup(message.rendered())!
            texts.append(text)
            alertd_smtp_set_message_string(handle, text)
            handles.append((handle, recipients))
        }

        // Without this, Nagle's algorithm holds each message's last piece for the server's
        // delayed ACK: 40 ms per message, about 20 messages a second.
        alertd_smtp_set_nodelay(session)
        let started = smtp_start_session(session)
        withExtendedLifetime(credentials) {}
        // libesmtp can end a session "successfully" without sending anything, when STARTTLS or
        // AUTH is refused: a message without a transfer status was not sent.
        let unsent = handles.contains { handle in handle.message.flatMap { smtp_message_transfer_status($0)?.pointee.code } ?? 0 == 0 }
        let sessionError: String? = started == 0 || unsent ? errorText(tls: settings.tls) : nil

        return handles.map { handle in
            let message = handle.message.flatMap { reply(smtp_message_transfer_status($0)) }
            var recipients: [String: Reply] = [:]
            for (address, recipient) in handle.recipients {
                recipients[address] = recipient.flatMap { reply(smtp_recipient_status($0)) } ?? Reply(code: 0, text: sessionError ?? "not attempted")
            }
            return MessageResult(message: message?.code == 0 ? nil : message, recipients: recipients, sessionError: sessionError)
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    static func reply(_ status: UnsafePointer<smtp_status_t>?) -> Reply? {
        guard let status else { return nil }
        let text = status.pointee.text.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        return Reply(code: Int(status.pointee.code), text: text)
    }

    static func errorText(tls: SMTPSettings.TLS) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let code = smtp_errno()
        if code == 0 {
            return tls == .required
                ? "The SMTP server was not used: STARTTLS failed (certificate not trusted or not for this host) or AUTH was refused."
                : "The SMTP session ended before the message was sent (AUTH refused?)."
        }
        let text = buffer.withUnsafeMutableBufferPointer { pointer in
            smtp_strerror(code, pointer.baseAddress, pointer.count).map { String(cString: $0) } ?? "unknown error"
        }
        return "SMTP session failed: \(text) (libesmtp error \(code))"
    }
}
