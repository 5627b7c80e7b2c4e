import Foundation

/// A signing secret, given as `whsec_` followed by base64 bytes.
public struct SigningSecret: Sendable, Equatable {
    let key: [UInt8]

    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("whsec_") else {
            throw AlertdError(.configuration, "A webhook secret must start with whsec_ (Standard Webhooks format).")
        }
        var encoded = String(trimmed.dropFirst("whsec_".count))
        if let separator = encoded.first(where: { ",;|".contains($0) }) {
            throw AlertdError(.configuration, "A webhook secret list is separated by spaces, not by \"\(separator)\": give ALERTD_WEBHOOK_SECRET as \"whsec_new whsec_old\" (newest first).")
        }
        // The reference libraries accept base64 without its padding; so does alertd.
        if encoded.count % 4 != 0 { encoded += String(repeating: "=", count: 4 - encoded.count % 4) }
        guard let key = Data(base64Encoded: encoded), key.count >= 16 else {
            throw AlertdError(.configuration, "A webhook secret must be whsec_ followed by at least 16 bytes in base64.")
        }
        self.key = Array(key)
    }
}
