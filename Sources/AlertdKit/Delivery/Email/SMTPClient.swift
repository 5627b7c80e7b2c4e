import AlertdSupport
import CAlertdShims
import CESMTP
import COpenSSL
import Foundation
import ServiceLifecycle

/// Sends email with libesmtp: one SMTP session carries a whole batch of messages, on a thread of
/// its own. Every message and every recipient comes back with the server's reply.
///
/// As a service it runs until graceful shutdown (after the dispatcher's), then stops its thread.
public final class SMTPClient: Service, Sendable {
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
        public let sessionFailure: SMTPSessionFailure?

        public var sessionError: String? { sessionFailure?.message }
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
    ///
    /// Why messages were not sent when alertd stopped during their session: nothing of the
    /// relay's health.
    static let shuttingDown = "alertd is shutting down"

    /// Cancelling the task returns at once with every message unsent ("alertd is shutting
    /// down"); the session goes on on its thread until the server or the timeout ends it, and
    /// what it did is not reported.
    public func send(_ messages: [EmailMessage]) async -> [MessageResult] {
        let settings = self.settings
        let shuttingDown = messages.map { _ in MessageResult(message: nil, recipients: [:], sessionFailure: SMTPSessionFailure(.other, Self.shuttingDown)) }
        let result = OneTimeResult<[MessageResult]>()
        return await withTaskCancellationHandler {
            let queued = worker.submit { result.set(Self.sendBlocking(messages, settings: settings)) }
            if !queued { result.set(shuttingDown) }
            return await result.value
        } onCancel: {
            result.set(shuttingDown)
        }
    }

    public func run() async {
        try? await gracefulShutdown()
        worker.shutdown()
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
        // libESMTP writes with plain write(2): a server that hangs up (or a session alertd ends
        // before MAIL FROM) would raise SIGPIPE, which kills a process that does not ignore it.
        // Blocked on this thread, it stays pending here, and the write fails with EPIPE instead.
        var pipe = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipe, nil)
        guard let session = smtp_create_session() else {
            return messages.map { _ in MessageResult(message: nil, recipients: [:], sessionFailure: SMTPSessionFailure(.other, "libESMTP could not create a session (out of memory?)")) }
        }
        defer { smtp_destroy_session(session) }
        // Every set-up call is checked: a session set up only in part (without STARTTLS, say)
        // is not started.
        var refused: [String] = []
        func check(_ succeeded: Bool, _ what: String) {
            if !succeeded { refused.append(what) }
        }
        check(smtp_set_server(session, "\(settings.host):\(settings.port)") != 0, "the server \(settings.host):\(settings.port)")
        let milliseconds = Int(settings.timeout.seconds * 1000)
        for which in [Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA, Timeout_TRANSFER, Timeout_DATA2] {
            check(smtp_set_timeout(session, Int32(which.rawValue) | Timeout_OVERRIDE_RFC2822_MINIMUM, milliseconds) != 0, "the timeout")
        }

        let transcript = SMTPTranscript(loginConfigured: settings.user != nil, hostIsIPAddress: Self.isIPAddress(settings.host), serverPort: settings.port)
        check(alertd_smtp_observe(session, transcript.observer) != 0, "the session's observer")
        check(smtp_set_monitorcb(session, SMTPTranscript.monitor, Unmanaged.passUnretained(transcript).toOpaque(), 0) != 0, "the protocol monitor")
        check(smtp_set_hostname(session, settings.heloName) != 0, "the EHLO name \(settings.heloName)")

        // Our own TLS context: the system's CAs (or the configured file) and peer verification,
        // with OpenSSL's refusal recorded in the transcript to say why.
        var context: OpaquePointer?
        switch settings.tls {
        case .none:
            check(smtp_starttls_enable(session, Starttls_DISABLED) != 0, "turning STARTTLS off")
        case .optional, .required:
            context = SSL_CTX_new(TLS_client_method())
            check(context != nil, "a TLS context (OpenSSL)")
            if let context {
                transcript.watchCertificates(of: context)
                // The certificate must name the host alertd connects to (a DNS name, or the IP
                // address in an IP SAN); checked by OpenSSL during the handshake itself.
                let parameters = SSL_CTX_get0_param(context)
                check(parameters != nil, "the certificate check's parameters (OpenSSL)")
                if let parameters {
                    if Self.isIPAddress(settings.host) {
                        check(X509_VERIFY_PARAM_set1_ip_asc(parameters, settings.host) == 1, "checking the certificate for \(settings.host) (OpenSSL)")
                    } else {
                        check(X509_VERIFY_PARAM_set1_host(parameters, settings.host, 0) == 1, "checking the certificate for \(settings.host) (OpenSSL)")
                    }
                }
                if let caFile = settings.caFile {
                    check(SSL_CTX_load_verify_locations(context, caFile, nil) == 1, "the CA file \(caFile) (OpenSSL cannot read it)")
                } else {
                    check(SSL_CTX_set_default_verify_paths(context) == 1, "the system's CA certificates (OpenSSL)")
                }
                check(alertd_smtp_starttls_set_ctx(session, UnsafeMutableRawPointer(context)) != 0, "the TLS context")
            }
            check(smtp_starttls_enable(session, settings.tls == .required ? Starttls_REQUIRED : Starttls_ENABLED) != 0, "turning STARTTLS on")
        }
        defer { if let context { SSL_CTX_free(context) } }

        var credentials: Credentials?
        var authContext: auth_context_t?
        if let user = settings.user {
            credentials = Credentials(user: user, password: settings.password ?? "")
            authContext = auth_create_context()
            check(authContext != nil, "a login context")
            if let authContext, let credentials {
                check(auth_set_mechanism_flags(authContext, UInt32(AUTH_PLUGIN_PLAIN), 0) != 0, "the login mechanisms")
                // The credentials object outlives the session: it is released after
                // smtp_destroy_session, at the end of this function.
                let interaction = auth_set_interact_cb(authContext, { request, result, fields, argument in
                    guard let request, let result, let argument else { return 0 }
                    let credentials = Unmanaged<Credentials>.fromOpaque(argument).takeUnretainedValue()
                    for index in 0..<Int(fields) {
                        let flags = Int32(request[index].flags)
                        if flags & AUTH_USER != 0 { result[index] = credentials.user }
                        if flags & AUTH_PASS != 0 { result[index] = credentials.password }
                    }
                    return 1
                }, Unmanaged.passUnretained(credentials).toOpaque())
                check(interaction != 0, "the login's credentials")
                check(alertd_smtp_auth_set_context(session, UnsafeMutableRawPointer(authContext)) != 0, "the login context")
            }
        }
        defer { if let authContext { auth_destroy_context(authContext) } }

        // Message texts must stay alive until smtp_start_session returns.
        var texts: [UnsafeMutablePointer<CChar>] = []
        defer { texts.forEach { free($0) } }
        var handles: [(message: smtp_message_t?, recipients: [(String, smtp_recipient_t?)])] = []
        for message in messages {
            let handle = smtp_add_message(session)
            check(handle != nil, "a message")
            check(smtp_set_reverse_path(handle, message.from) != 0, "the sender \(message.from)")
            let recipients = message.to.map { ($0, smtp_add_recipient(handle, $0)) }
            check(recipients.allSatisfy { $0.1 != nil }, "a recipient")
            let text = strdup(message.rendered())!
            texts.append(text)
            check(alertd_smtp_set_message_string(handle, text) != 0, "a message's text")
            handles.append((handle, recipients))
        }
        if let first = refused.first {
            let failure = SMTPSessionFailure(.other, "alertd could not set up the SMTP session: libESMTP or OpenSSL refused \(first)\(refused.count > 1 ? " (and \(refused.count - 1) more)" : "").")
            return messages.map { _ in MessageResult(message: nil, recipients: [:], sessionFailure: failure) }
        }

        let started = smtp_start_session(session)
        let errorCode = smtp_errno()
        withExtendedLifetime(credentials) {}
        // libesmtp can end a session "successfully" without sending anything, when STARTTLS or
        // AUTH is refused: a message without a transfer status was not sent.
        let unsent = handles.contains { handle in handle.message.flatMap { smtp_message_transfer_status($0)?.pointee.code } ?? 0 == 0 }
        let failure = started == 0 || unsent || transcript.mailBlocked
            ? Self.failure(errorCode: errorCode, transcript: transcript, settings: settings)
            : nil
        // Without the configured login, what the server said of recipients is no verdict on them.
        let recipientsJudged = !(failure?.reason == .loginRefused || failure?.reason == .noUsableLogin)

        return handles.map { handle in
            let message = handle.message.flatMap { reply(smtp_message_transfer_status($0)) }
            var recipients: [String: Reply] = [:]
            for (address, recipient) in handle.recipients {
                let judged = recipientsJudged ? recipient.flatMap { reply(smtp_recipient_status($0)) } : nil
                recipients[address] = judged.flatMap { $0.code == 0 ? nil : $0 } ?? Reply(code: 0, text: failure?.message ?? "not attempted")
            }
            return MessageResult(
                message: recipientsJudged && message?.code != 0 ? message : nil, recipients: recipients, sessionFailure: failure
            )
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

    /// Why the session failed, from libESMTP's error, the transcript and OpenSSL's verdict.
    static func failure(errorCode: Int32, transcript: SMTPTranscript, settings: SMTPSettings) -> SMTPSessionFailure {
        let server = "\(settings.host):\(settings.port)"
        let observer = transcript.observer.pointee
        let lastReply = transcript.lastReply.map { " Its last reply: \($0)" } ?? ""
        if let certificate = transcript.certificateError {
            if certificate.code == X509_V_ERR_HOSTNAME_MISMATCH || certificate.code == X509_V_ERR_IP_ADDRESS_MISMATCH {
                return SMTPSessionFailure(.certificateForAnotherHost, "The SMTP server's certificate is for another host: it does not name \(settings.host) (OpenSSL: \(certificate.text)). Connect by a name the certificate lists, or give the server a certificate for \(settings.host).")
            }
            return SMTPSessionFailure(.certificateNotTrusted, "The SMTP server's certificate is not trusted (OpenSSL: \(certificate.text)). If the server uses a private CA, set ALERTD_SMTP_CA_FILE to that CA's certificate.")
        }
        if observer.wrong_peer_certificate != 0 {
            return SMTPSessionFailure(.certificateForAnotherHost, "The SMTP server's certificate is for another host: it does not name \(settings.host). Connect by a name the certificate lists, or give the server a certificate for \(settings.host).")
        }
        if observer.starttls_unavailable != 0 {
            return SMTPSessionFailure(.noStartTLS, "The SMTP server at \(server) does not offer STARTTLS, and ALERTD_SMTP_TLS=required: alertd sends no login or mail over an unencrypted connection. Use the server's submission port (587), which offers STARTTLS, or set ALERTD_SMTP_TLS=optional if plain SMTP is really meant.")
        }
        if let refusal = transcript.authRefusal {
            return SMTPSessionFailure(.loginRefused, "The SMTP server refused the login of user \"\(settings.user ?? "")\": \(refusal). Check the user and password in ALERTD_SMTP_URL; no mail was sent without the login.")
        }
        if transcript.loginConfigured && !transcript.authAccepted && (transcript.mailBlocked || !transcript.authAttempted) && transcript.lastCommand == "MAIL" {
            return SMTPSessionFailure(.noUsableLogin, "The SMTP server at \(server) offers no login alertd can use (\(transcript.offeredAuth.map { "it offers AUTH \($0)" } ?? "it offers no AUTH"); alertd uses PLAIN or LOGIN, over TLS), and ALERTD_SMTP_URL has a user. No mail was sent without the login.")
        }
        let after = transcript.lastCommand.map { "after \($0)" } ?? "after connecting"
        switch errorCode {
        case SMTP_ERR_DROPPED_CONNECTION, SMTP_ERR_CLIENT_ERROR:
            if ContinuousClock.now - transcript.lastActivity >= settings.timeout - .milliseconds(250) {
                return SMTPSessionFailure(.timedOut, "The SMTP server at \(server) did not answer within alertd's timeout (ALERTD_SMTP_TIMEOUT, \(settings.timeout.seconds.formatted()) s) \(after).\(lastReply)")
            }
            if errorCode == SMTP_ERR_CLIENT_ERROR && transcript.lastCommand == "STARTTLS" {
                return SMTPSessionFailure(.other, "The TLS handshake with the SMTP server at \(server) failed after STARTTLS.\(Self.openSSLError())")
            }
            return SMTPSessionFailure(.closedByServer, "The SMTP server at \(server) closed the connection \(after).\(lastReply)")
        case SMTP_ERR_EAI_ADDRFAMILY...SMTP_ERR_EAI_SOCKTYPE:
            return SMTPSessionFailure(.cannotConnect, "Cannot resolve the SMTP server's host name \(settings.host): \(Self.text(of: errorCode)).")
        case 0:
            if let reply = transcript.lastReply, reply.first == "4" || reply.first == "5" {
                return SMTPSessionFailure(.sessionRefused, "The SMTP server at \(server) refused the session: \(reply)")
            }
            return SMTPSessionFailure(.other, "The SMTP session with \(server) ended before the message was sent.\(lastReply)")
        case ..<0:
            return SMTPSessionFailure(.cannotConnect, "Cannot connect to the SMTP server at \(server): \(Self.text(of: errorCode)).")
        default:
            return SMTPSessionFailure(.other, "The SMTP session with \(server) failed \(after): \(Self.text(of: errorCode)).\(lastReply)")
        }
    }

    static func text(of errorCode: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        return buffer.withUnsafeMutableBufferPointer { pointer in
            smtp_strerror(errorCode, pointer.baseAddress, pointer.count).map { String(cString: $0) } ?? "unknown error"
        }
    }

    /// OpenSSL's reason for the last failure on this thread, if it gave one.
    static func openSSLError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        ERR_clear_error()
        return " OpenSSL: \(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))"
    }
}
