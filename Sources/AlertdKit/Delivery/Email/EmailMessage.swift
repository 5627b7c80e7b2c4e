import Foundation

/// An email in the canonical form SMTP carries: CRLF line ends, ASCII headers (RFC 2047 for a
/// UTF-8 subject), and a multipart/alternative body, plain text first, then HTML, each in base64.
///
/// Nothing from an alert reaches a header unchecked: addresses must be plain `local@domain`
/// without spaces or control characters, and the subject is one line, encoded when not ASCII.
public struct EmailMessage: Sendable, Equatable {
    public let from: String
    /// The sender's display name (`ALERTD_SMTP_FROM="Alerts <alerts@example.com>"`), if any.
    public let fromName: String?
    public let to: [String]
    public let subject: String
    public let text: String
    public let html: String
    public let messageID: String
    public let date: Date

    public init(from: String, fromName: String? = nil, to: [String], subject: String, text: String, html: String, messageID: String, date: Date) {
        self.from = from
        self.fromName = fromName
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
        self.messageID = messageID
        self.date = date
    }

    /// Whether `address` is a mailbox alertd will put in an envelope and a header.
    public static func isValidAddress(_ address: String) -> Bool {
        guard address.utf8.count <= 254, let at = address.lastIndex(of: "@") else { return false }
        let local = address[..<at]
        let domain = address[address.index(after: at)...]
        guard !local.isEmpty, local.utf8.count <= 64, !domain.isEmpty, domain.contains(".") || domain == "localhost" else { return false }
        let forbidden = Set("<>()[]\\,;:\"@ \t\r\n")
        if local.contains(where: { forbidden.contains($0) || $0.asciiValue.map { $0 < 0x21 || $0 == 0x7F } ?? false }) { return false }
        return domain.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
            && !domain.hasPrefix(".") && !domain.hasSuffix(".") && !domain.contains("..")
    }

    /// The message as SMTP's DATA carries it.
    public func rendered() -> String {
        let boundary = "alertd-" + messageID.filter { $0.isLetter || $0.isNumber }
        var lines = [
            "From: \(Self.mailbox(from, name: fromName))",
            "To: \(to.joined(separator: ", "))",
            "Subject: \(Self.encodeHeader(subject))",
            "Date: \(Self.rfc5322Date(date))",
            "Message-ID: <\(messageID)>",
            "MIME-Version: 1.0",
            "Auto-Submitted: auto-generated",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
            "",
            "--\(boundary)",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
            "",
        ]
        lines += Self.base64Lines(text)
        lines += ["", "--\(boundary)", "Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: base64", ""]
        lines += Self.base64Lines(html)
        lines += ["", "--\(boundary)--", ""]
        return lines.joined(separator: "\r\n")
    }

    /// An address header's mailbox: `"Display Name" <address>`, the name quoted when it holds
    /// specials and RFC 2047-encoded when it is not ASCII; the bare address without a name.
    public static func mailbox(_ address: String, name: String?) -> String {
        guard let name, !name.isEmpty else { return address }
        let printableASCII = name.allSatisfy { $0.isASCII && !($0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? true) }
        guard printableASCII else { return "\(encodeHeader(name)) <\(address)>" }
        let atext = name.allSatisfy { $0.isLetter || $0.isNumber || $0 == " " || "!#$%&'*+-/=?^_`{|}~".contains($0) }
        let phrase = atext ? name : "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        return "\(phrase) <\(address)>"
    }

    /// The domain of an address: what Message-IDs and, by default, EHLO use.
    public static func domain(of address: String) -> String {
        address.lastIndex(of: "@").map { String(address[address.index(after: $0)...]) } ?? address
    }

    /// A header value as is when it is printable ASCII, else as RFC 2047 encoded words of at most
    /// 75 characters, folded onto continuation lines.
    static func encodeHeader(_ value: String) -> String {
        let oneLine = value.map { $0.isNewline ? " " : String($0) }.joined()
        if oneLine.allSatisfy({ $0.isASCII && !($0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? true) }) && oneLine.count <= 900 {
            return oneLine
        }
        // Whole characters per word, each word's base64 at most 75 - 12 characters.
        var words: [String] = []
        var chunk = ""
        for character in oneLine {
            let candidate = chunk + String(character)
            if Data(candidate.utf8).base64EncodedString().count > 63 {
                words.append(chunk)
                chunk = String(character)
            } else {
                chunk = candidate
            }
        }
        if !chunk.isEmpty { words.append(chunk) }
        return words.map { "=?UTF-8?B?\(Data($0.utf8).base64EncodedString())?=" }.joined(separator: "\r\n ")
    }

    static func base64Lines(_ text: String) -> [String] {
        let encoded = Data(text.utf8).base64EncodedString()
        return stride(from: 0, to: encoded.count, by: 76).map { start in
            let from = encoded.index(encoded.startIndex, offsetBy: start)
            let to = encoded.index(from, offsetBy: min(76, encoded.count - start))
            return String(encoded[from..<to])
        }
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}
