import CAlertdShims
import COpenSSL
import Foundation

/// What one SMTP session said, as libESMTP's monitor callback and OpenSSL's certificate check
/// see it, kept to explain a failure: the commands' verbs (never their arguments, which carry the
/// login), the server's last replies, when anything last moved, and how AUTH went. It also ends
/// the session before MAIL FROM when a login is configured and was not accepted, so that no mail
/// is submitted without it. Used on the SMTP worker's thread only, for one session.
final class SMTPTranscript {
    /// The commands alertd sends, by verb; anything else written (AUTH continuations) is not kept.
    static let verbs: Set<String> = ["EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "QUIT"]

    let loginConfigured: Bool
    private(set) var lastActivity = ContinuousClock.now
    private(set) var lastCommand: String?
    private(set) var replies: [String] = []
    private(set) var offeredAuth: String?
    private(set) var authAttempted = false
    private(set) var authAccepted = false
    private(set) var authRefusal: String?
    private(set) var mailBlocked = false
    /// OpenSSL's verdict on the server's certificate, when it refused it.
    var certificateError: (code: Int32, text: String)?
    /// The libESMTP events of this session (filled in by the C shim).
    let observer: UnsafeMutablePointer<alertd_smtp_observer>

    init(loginConfigured: Bool, hostIsIPAddress: Bool, serverPort: Int) {
        self.loginConfigured = loginConfigured
        observer = .allocate(capacity: 1)
        observer.initialize(to: alertd_smtp_observer())
        observer.pointee.certificate_checked_for_ip = hostIsIPAddress ? 1 : 0
        observer.pointee.server_port = Int32(serverPort)
    }

    deinit {
        observer.deallocate()
    }

    func wrote(_ text: Substring) {
        let verb = text.prefix { $0.isLetter }.uppercased()
        // QUIT ends every session, failed or not, also one that waited out the timeout: what
        // came before it explains a failure.
        guard verb != "QUIT" else { return }
        lastActivity = .now
        guard Self.verbs.contains(verb) else { return }
        lastCommand = verb
        if verb == "AUTH" { authAttempted = true }
        if verb == "MAIL" && loginConfigured && !authAccepted && observer.pointee.socket >= 0 {
            // libESMTP goes on to MAIL FROM when AUTH fails or is not offered (the server may
            // accept mail for its own domain); a configured login means it must not. Ending the
            // connection here sends nothing more, and the session fails.
            shutdown(observer.pointee.socket, Int32(SHUT_RDWR))
            mailBlocked = true
        }
    }

    func read(_ text: Substring) {
        lastActivity = .now
        for line in text.split(whereSeparator: \.isNewline) {
            let reply = String(line.prefix(300))
            replies.append(reply)
            if replies.count > 8 { replies.removeFirst() }
            let code = Int(reply.prefix(3)) ?? 0
            let rest = reply.dropFirst(4)
            if (200..<300).contains(code), rest.uppercased().hasPrefix("AUTH ") {
                offeredAuth = String(rest.dropFirst(5))
            }
            if lastCommand == "AUTH" {
                if code == 235 { authAccepted = true }
                if code >= 400 { authRefusal = reply }
            }
        }
    }

    var lastReply: String? { replies.last }

    /// libESMTP's monitor callback: `writing` is 1 for what alertd sends, 0 for what it reads.
    static let monitor: smtp_monitorcb_t = { buffer, length, writing, argument in
        guard let buffer, let argument, length > 0 else { return }
        let transcript = Unmanaged<SMTPTranscript>.fromOpaque(argument).takeUnretainedValue()
        let text = String(decoding: UnsafeRawBufferPointer(start: buffer, count: Int(length)), as: UTF8.self)
        if writing == 0 { transcript.read(text[...]) } else if writing == 1 { transcript.wrote(text[...]) }
    }

    /// Installs a certificate check on `context` that records OpenSSL's first refusal here.
    /// The transcript must outlive every connection made with the context.
    func watchCertificates(of context: OpaquePointer) {
        SSL_CTX_set_ex_data(context, 0, Unmanaged.passUnretained(self).toOpaque())
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER) { preverified, store in
            guard preverified == 0, let store,
                  let ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()),
                  let context = SSL_get_SSL_CTX(OpaquePointer(ssl)),
                  let owner = SSL_CTX_get_ex_data(context, 0)
            else { return preverified }
            let transcript = Unmanaged<SMTPTranscript>.fromOpaque(owner).takeUnretainedValue()
            if transcript.certificateError == nil {
                let code = X509_STORE_CTX_get_error(store)
                transcript.certificateError = (code, String(cString: X509_verify_cert_error_string(Int(code))))
            }
            return preverified
        }
    }
}
