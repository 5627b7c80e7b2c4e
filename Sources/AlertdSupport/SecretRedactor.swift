import Foundation

/// Removes secrets from text before it is logged, printed or stored.
///
/// It knows the secrets it was given (the password of a connection string, say) and also masks
/// anything shaped like one: the password in `scheme://user:password@host` and the value of
/// `password=` in a conninfo string or a URI query.
public struct SecretRedactor: Sendable {
    public static let mask = "********"

    private let secrets: [String]

    public init(secrets: [String] = []) {
        // Longest first, so that a secret containing another is masked whole.
        self.secrets = Array(Set(secrets.filter { !$0.isEmpty })).sorted { $0.count > $1.count }
    }

    /// This redactor, masking `more` too.
    public func adding(_ more: [String]) -> SecretRedactor {
        SecretRedactor(secrets: secrets + more)
    }

    public func redact(_ text: String) -> String {
        var result = text
        for secret in secrets {
            result = result.replacingOccurrences(of: secret, with: Self.mask)
        }
        result = Self.maskURIPasswords(in: result)
        result = Self.maskKeywordPasswords(in: result)
        return result
    }

    /// `scheme://user:secret@host` → `scheme://user:********@host`.
    static func maskURIPasswords(in text: String) -> String {
        var output = ""
        var rest = Substring(text)
        while let schemeEnd = rest.range(of: "://") {
            output += rest[..<schemeEnd.upperBound]
            rest = rest[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex { "/?# \t\n\"'".contains($0) } ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                output += authority[...colon] + mask + authority[at...]
            } else {
                output += authority
            }
            rest = rest[authorityEnd...]
        }
        return output + rest
    }

    /// `password=secret` and `password = 'se cret'` → `password=********`.
    static func maskKeywordPasswords(in text: String) -> String {
        var output = ""
        var rest = Substring(text)
        while let keyword = rest.range(of: "password", options: .caseInsensitive) {
            output += rest[..<keyword.upperBound]
            rest = rest[keyword.upperBound...]
            var cursor = rest.startIndex
            while cursor < rest.endIndex, rest[cursor] == " " { cursor = rest.index(after: cursor) }
            guard cursor < rest.endIndex, rest[cursor] == "=" else { continue }
            cursor = rest.index(after: cursor)
            while cursor < rest.endIndex, rest[cursor] == " " { cursor = rest.index(after: cursor) }
            output += "="
            if cursor < rest.endIndex, rest[cursor] == "'" {
                // A quoted conninfo value: up to the closing quote that is not escaped.
                var end = rest.index(after: cursor)
                while end < rest.endIndex, rest[end] != "'" {
                    if rest[end] == "\\" { end = rest.index(after: end) }
                    if end < rest.endIndex { end = rest.index(after: end) }
                }
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : rest[end...]
            } else {
                let end = rest[cursor...].firstIndex { " \t\n&;\"".contains($0) } ?? rest.endIndex
                rest = rest[end...]
            }
            output += mask
        }
        return output + rest
    }
}
