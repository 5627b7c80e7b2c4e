import AlertdSupport
import Foundation

/// Where and how to send email: `ALERTD_SMTP_URL` (smtp://[user:password@]host[:port]),
/// `ALERTD_SMTP_FROM`, `ALERTD_SMTP_TLS` and `ALERTD_SMTP_CA_FILE`.
public struct SMTPSettings: Sendable, CustomStringConvertible {
    public enum TLS: String, Sendable, CaseIterable {
        /// STARTTLS with a verified certificate and host name, or no mail at all (the default).
        case required
        /// STARTTLS when the server offers it.
        case optional
        /// Never TLS.
        case none
    }

    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    /// The envelope sender and the From header's address.
    public var from: String
    /// The From header's display name, from `ALERTD_SMTP_FROM="Name <address>"`.
    public var fromName: String?
    /// The name alertd gives itself in EHLO: a fully qualified name, not the machine's short one.
    public var heloName: String
    public var tls: TLS
    public var caFile: String?
    /// AUTH over a connection that may not be encrypted: only when asked for explicitly.
    public var allowInsecureAuth: Bool
    public var timeout: Duration

    public static func parse(
        url: String, from: String?, tls: String?, caFile: String?, allowInsecureAuth: Bool, timeout: Duration, heloName: String? = nil
    ) -> (settings: SMTPSettings?, problems: [String]) {
        var problems: [String] = []
        let redactor = SecretRedactor()
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), let host = components.host, !host.isEmpty else {
            return (nil, ["ALERTD_SMTP_URL: \"\(redactor.redact(url))\" is not smtp://[user:password@]host[:port]."])
        }
        let port = components.port ?? 587
        if scheme == "smtps" || port == 465 {
            return (nil, ["ALERTD_SMTP_URL: \(scheme == "smtps" ? "smtps://" : "port 465") is implicit TLS (SMTPS), which alertd's mail library (libESMTP) does not speak: the connection would wait for a greeting that never comes. Use smtp://\(host):587, the submission port with STARTTLS, which every major mail relay offers (ALERTD_SMTP_TLS=required keeps it encrypted and verified)."])
        }
        guard scheme == "smtp" else {
            return (nil, ["ALERTD_SMTP_URL: \"\(redactor.redact(url))\" is not smtp://[user:password@]host[:port]."])
        }
        let mode = TLS(rawValue: (tls ?? "required").lowercased())
        if mode == nil { problems.append("ALERTD_SMTP_TLS: \"\(tls ?? "")\" is not required, optional or none.") }
        let sender = from.flatMap(Self.sender)
        if sender == nil {
            problems.append("ALERTD_SMTP_FROM: \(from.map { "\"\($0)\" is not an address like alertd@example.com or Alerts <alertd@example.com>" } ?? "required when ALERTD_SMTP_URL is set").")
        }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            problems.append("ALERTD_SMTP_CA_FILE: \(caFile) cannot be read.")
        }
        if let heloName, !Self.isHostName(heloName) {
            problems.append("ALERTD_SMTP_HELO_NAME: \"\(heloName)\" is not a fully qualified host name like mail.example.com.")
        }
        let user = components.user?.removingPercentEncoding
        let password = components.password?.removingPercentEncoding
        if user != nil && mode != .required && !allowInsecureAuth {
            problems.append("ALERTD_SMTP_URL has credentials but ALERTD_SMTP_TLS is not required: they could cross the network unencrypted. Use ALERTD_SMTP_TLS=required, or set ALERTD_SMTP_ALLOW_INSECURE_AUTH=true if that is really meant.")
        }
        guard problems.isEmpty, let mode, let sender else { return (nil, problems) }
        return (SMTPSettings(
            host: host, port: port, user: user, password: password, from: sender.address, fromName: sender.name,
            heloName: heloName ?? Self.defaultHeloName(senderDomain: EmailMessage.domain(of: sender.address)),
            tls: mode, caFile: caFile, allowInsecureAuth: allowInsecureAuth, timeout: timeout
        ), [])
    }

    /// `alertd@example.com` or `Display Name <alertd@example.com>` (the name may be quoted).
    static func sender(_ text: String) -> (address: String, name: String?)? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if EmailMessage.isValidAddress(trimmed) { return (trimmed, nil) }
        guard trimmed.hasSuffix(">"), let open = trimmed.lastIndex(of: "<") else { return nil }
        let address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
        var name = trimmed[..<open].trimmingCharacters(in: .whitespaces)
        if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") { name = String(name.dropFirst().dropLast()) }
        guard EmailMessage.isValidAddress(address), !name.contains(where: { $0.isNewline || $0 == "<" || $0 == ">" }) else { return nil }
        return (address, name.isEmpty ? nil : name)
    }

    static func isHostName(_ name: String) -> Bool {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && name.utf8.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }

    /// This machine's fully qualified name when the resolver knows one; else the sender's domain
    /// (a short name such as `vm` in EHLO is refused or scored as spam by many relays).
    static func defaultHeloName(senderDomain: String) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return senderDomain }
        let short = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if isHostName(short) { return short }
        var hints = addrinfo()
        hints.ai_flags = AI_CANONNAME
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(short, nil, &hints, &result) == 0, let result else { return senderDomain }
        defer { freeaddrinfo(result) }
        let canonical = result.pointee.ai_canonname.map { String(cString: $0) } ?? ""
        return isHostName(canonical) && canonical != "localhost.localdomain" ? canonical : senderDomain
    }

    /// The relay as a destination (`alertd_destinations`): smtp://host:port, no credentials.
    public var destination: String { "smtp://\(host.lowercased()):\(port)" }

    public var description: String {
        "smtp://\(user.map { "\($0):\(SecretRedactor.mask)@" } ?? "")\(host):\(port) tls=\(tls.rawValue) from=\(EmailMessage.mailbox(from, name: fromName)) ehlo=\(heloName)\(caFile.map { " ca=\($0)" } ?? "")"
    }
}
