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
    public var from: String
    public var tls: TLS
    public var caFile: String?
    /// AUTH over a connection that may not be encrypted: only when asked for explicitly.
    public var allowInsecureAuth: Bool
    public var timeout: Duration

    public static func parse(
        url: String, from: String?, tls: String?, caFile: String?, allowInsecureAuth: Bool, timeout: Duration
    ) -> (settings: SMTPSettings?, problems: [String]) {
        var problems: [String] = []
        let redactor = SecretRedactor()
        guard let components = URLComponents(string: url), components.scheme?.lowercased() == "smtp", let host = components.host, !host.isEmpty else {
            return (nil, ["ALERTD_SMTP_URL: \"\(redactor.redact(url))\" is not smtp://[user:password@]host[:port] (implicit TLS on port 465 is not supported; use STARTTLS)."])
        }
        let mode = TLS(rawValue: (tls ?? "required").lowercased())
        if mode == nil { problems.append("ALERTD_SMTP_TLS: \"\(tls ?? "")\" is not required, optional or none.") }
        if from.map(EmailMessage.isValidAddress) != true {
            problems.append("ALERTD_SMTP_FROM: \(from.map { "\"\($0)\" is not a plain address like alertd@example.com" } ?? "required when ALERTD_SMTP_URL is set").")
        }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            problems.append("ALERTD_SMTP_CA_FILE: \(caFile) cannot be read.")
        }
        let user = components.user?.removingPercentEncoding
        let password = components.password?.removingPercentEncoding
        if user != nil && mode != .required && !allowInsecureAuth {
            problems.append("ALERTD_SMTP_URL has credentials but ALERTD_SMTP_TLS is not required: they could cross the network unencrypted. Use ALERTD_SMTP_TLS=required, or set ALERTD_SMTP_ALLOW_INSECURE_AUTH=true if that is really meant.")
        }
        guard problems.isEmpty, let mode, let from else { return (nil, problems) }
        return (SMTPSettings(host: host, port: components.port ?? 587, user: user, password: password, from: from, tls: mode, caFile: caFile, allowInsecureAuth: allowInsecureAuth, timeout: timeout), [])
    }

    public var description: String {
        "smtp://\(user.map { "\($0):\(SecretRedactor.mask)@" } ?? "")\(host):\(port) tls=\(tls.rawValue) from=\(from)\(caFile.map { " ca=\($0)" } ?? "")"
    }
}
