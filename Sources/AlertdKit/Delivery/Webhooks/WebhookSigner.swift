import COpenSSL
import Foundation

/// Signs webhook requests as the Standard Webhooks specification says: the signature is
/// `v1,` + base64(HMAC-SHA256(secret, "<id>.<timestamp>.<body>")), one per secret, separated by
/// spaces, so that receivers can rotate secrets without missing a message.
public struct WebhookSigner: Sendable {
    public typealias Secret = SigningSecret

    public let secrets: [Secret]

    public init(secrets: [Secret]) {
        self.secrets = secrets
    }

    /// Reads space-separated `whsec_` secrets, the newest first.
    public init(secretList: String) throws {
        self.secrets = try secretList.split(whereSeparator: \.isWhitespace).map { try Secret(String($0)) }
    }

    /// The `webhook-signature` header value; empty when there is no secret.
    public func signature(id: String, timestamp: Int, body: Data) -> String {
        var message = Data("\(id).\(timestamp).".utf8)
        message.append(body)
        return secrets.map { "v1," + Self.hmacSHA256(key: $0.key, message: message).base64EncodedString() }
            .joined(separator: " ")
    }

    static func hmacSHA256(key: [UInt8], message: Data) -> Data {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        message.withUnsafeBytes { bytes in
            _ = HMAC(EVP_sha256(), key, Int32(key.count), bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, &digest, &length)
        }
        return Data(digest.prefix(Int(length)))
    }
}
