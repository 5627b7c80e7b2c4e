import AlertdSupport
import CLibPQ
import Foundation

/// Where and how to connect: a libpq conninfo string (`host=... dbname=...`) or a
/// `postgresql://` URI, parsed by libpq itself so that every libpq parameter, the `PG*`
/// environment variables and `~/.pgpass` work as users expect.
///
/// `description` shows the parsed parameters with the password masked; the original text, which
/// may hold a password, is never shown.
public struct PostgresConnectionString: Sendable, CustomStringConvertible {
    /// The text as given, passed to libpq as is. It may contain a password.
    let conninfo: String
    /// The parameters libpq read from the text, in libpq's order, without those left unset.
    let parameters: [(keyword: String, value: String, isSecret: Bool)]
    /// Masks this connection's password, and `PGPASSWORD`, in any text.
    public let redactor: SecretRedactor

    public init(_ text: String) throws(PostgresError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        // What may be a secret even if libpq cannot parse the text, so its error can be cleaned.
        let guessedSecrets = Self.secretsGuessed(from: trimmed)
        let environmentSecrets = [ProcessInfo.processInfo.environment["PGPASSWORD"]].compactMap { $0 }
        guard !trimmed.isEmpty else {
            throw PostgresError(.invalidConnectionString, "The database URL is empty.")
        }

        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(trimmed, &errorMessage) else {
            let reason = errorMessage.map { String(cString: $0) } ?? "out of memory"
            if let errorMessage { PQfreemem(errorMessage) }
            let redactor = SecretRedactor(secrets: guessedSecrets + environmentSecrets)
            throw PostgresError(
                .invalidConnectionString,
                "The database URL does not parse: \(redactor.redact(reason.trimmingCharacters(in: .whitespacesAndNewlines)))",
                hint: "Give a libpq conninfo string (host=... dbname=...) or a URI (postgresql://user@host:5432/dbname)."
            )
        }
        defer { PQconninfoFree(options) }

        var parsed: [(keyword: String, value: String, isSecret: Bool)] = []
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val {
                let isSecret = option.pointee.dispchar.map { String(cString: $0) == "*" } ?? false
                parsed.append((String(cString: keyword), String(cString: value), isSecret))
            }
            option += 1
        }
        self.conninfo = trimmed
        self.parameters = parsed
        self.redactor = SecretRedactor(
            secrets: parsed.filter(\.isSecret).map(\.value) + guessedSecrets + environmentSecrets
        )
    }

    public func value(of keyword: String) -> String? {
        parameters.first { $0.keyword == keyword }?.value
    }

    /// The host (or socket directory) to connect to, as given; nil means libpq's default.
    public var host: String? { value(of: "host") ?? value(of: "hostaddr") }
    public var port: String? { value(of: "port") }
    public var database: String? { value(of: "dbname") }
    public var user: String? { value(of: "user") }

    /// A copy that connects to another database of the same server.
    public func withDatabase(_ database: String) -> PostgresConnectionString {
        replacingKnown(["dbname": database])
    }

    /// A copy that connects to the same server and database as another user.
    public func withUser(_ user: String, password: String) -> PostgresConnectionString {
        replacingKnown(["user": user, "password": password])
    }

    /// A copy with some parameters set to other values (added when absent), parsed by libpq
    /// again: a keyword libpq does not know is an error, as in the text it came from.
    public func replacing(_ values: [String: String]) throws(PostgresError) -> PostgresConnectionString {
        try PostgresConnectionString(rebuilt(values))
    }

    /// `replacing` for keywords libpq is known to read (dbname, user, password): the parameters
    /// came from a string libpq parsed, so the copy needs no parse.
    private func replacingKnown(_ values: [String: String]) -> PostgresConnectionString {
        let kept = parameters.filter { values[$0.keyword] == nil }
        let added = values.sorted { $0.key < $1.key }.map { (keyword: $0.key, value: $0.value, isSecret: $0.key == "password") }
        return PostgresConnectionString(
            conninfo: rebuilt(values), parameters: kept + added,
            redactor: redactor.adding(added.filter(\.isSecret).map(\.value))
        )
    }

    private init(conninfo: String, parameters: [(keyword: String, value: String, isSecret: Bool)], redactor: SecretRedactor) {
        self.conninfo = conninfo
        self.parameters = parameters
        self.redactor = redactor
    }

    /// The conninfo text of these parameters with `values` set.
    private func rebuilt(_ values: [String: String]) -> String {
        var keywords = parameters.filter { values[$0.keyword] == nil }.map { "\($0.keyword)=\(Self.quote($0.value))" }
        keywords += values.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.quote($0.value))" }
        return keywords.joined(separator: " ")
    }

    public var description: String {
        parameters
            .map { "\($0.keyword)=\($0.isSecret ? SecretRedactor.mask : Self.quote($0.value))" }
            .joined(separator: " ")
    }

    /// Quotes a conninfo value when it needs it.
    static func quote(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "'" || $0 == "\\" || $0 == "=" }
        guard needsQuotes else { return value }
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
        return "'\(escaped)'"
    }

    /// Passwords in text that may not parse: URI user info and `password=` values.
    static func secretsGuessed(from text: String) -> [String] {
        var secrets: [String] = []
        if let schemeEnd = text.range(of: "://") {
            let authority = text[schemeEnd.upperBound...].prefix { !"/?#".contains($0) }
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                let password = String(authority[authority.index(after: colon)..<at])
                secrets.append(password)
                if let decoded = password.removingPercentEncoding { secrets.append(decoded) }
            }
        }
        var rest = Substring(text)
        while let keyword = rest.range(of: "password", options: .caseInsensitive) {
            rest = rest[keyword.upperBound...]
            let afterSpaces = rest.drop { $0 == " " }
            guard afterSpaces.first == "=" else { continue }
            let value = afterSpaces.dropFirst().drop { $0 == " " }
            let raw = value.hasPrefix("'")
                ? String(value.dropFirst().prefix { $0 != "'" })
                : String(value.prefix { !" &;".contains($0) })
            secrets.append(raw)
            if let decoded = raw.removingPercentEncoding { secrets.append(decoded) }
        }
        return secrets.filter { !$0.isEmpty }
    }
}

extension PostgresConnectionString {
    /// The connection string in full, password included, for handing to a child process such as
    /// psql or pg_dump. Never log it.
    package var conninfoForChildProcesses: String {
        parameters.map { "\($0.keyword)=\(Self.quote($0.value))" }.joined(separator: " ")
    }
}
