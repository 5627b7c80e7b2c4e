import Foundation

/// Which addresses webhooks may connect to. Tenants type webhook URLs, so by default nothing
/// inside the network: loopback, private, link-local (169.254.169.254, the cloud metadata
/// service, among them), CGNAT, multicast, unspecified, documentation and reserved addresses, and
/// their IPv4-mapped IPv6 forms. `ALERTD_WEBHOOK_ALLOW` admits receivers by CIDR or host name.
///
/// It is applied to the address a host name resolved to, when the connection is made, so a
/// name that resolves to 127.0.0.1 is refused like 127.0.0.1 itself.
public struct DestinationPolicy: Sendable, Equatable {
    /// An address range.
    public struct Network: Sendable, Equatable, CustomStringConvertible {
        let bytes: [UInt8]
        let prefix: Int

        public init?(_ text: String) {
            let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
            guard let address = DestinationPolicy.parse(parts[0]) else { return nil }
            let maximum = address.count * 8
            let prefix = parts.count == 2 ? Int(parts[1]) : maximum
            guard let prefix, (0...maximum).contains(prefix) else { return nil }
            self.bytes = address
            self.prefix = prefix
        }

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            var remaining = prefix
            for index in 0..<bytes.count where remaining > 0 {
                let bits = min(remaining, 8)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if address[index] & mask != bytes[index] & mask { return false }
                remaining -= bits
            }
            return true
        }

        public var description: String {
            (bytes.count == 4 ? bytes.map(String.init).joined(separator: ".") : DestinationPolicy.format(bytes)) + "/\(prefix)"
        }
    }

    static let blocked: [Network] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8",
    ].map { Network($0)! }

    public var allowedNetworks: [Network]
    /// Host names whose receivers are admitted whatever they resolve to (lower case).
    public var allowedHosts: Set<String>

    public init(allowedNetworks: [Network] = [], allowedHosts: Set<String> = []) {
        self.allowedNetworks = allowedNetworks
        self.allowedHosts = allowedHosts
    }

    /// Reads `ALERTD_WEBHOOK_ALLOW`: CIDRs (or single addresses) and host names, comma-separated.
    public static func parse(allowList: String) throws -> DestinationPolicy {
        var policy = DestinationPolicy()
        for item in allowList.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            if let network = Network(item) {
                policy.allowedNetworks.append(network)
            } else if item.contains("/") || item.contains(where: { $0 == " " || $0 == ":" }) {
                throw AlertdError(.configuration, "\"\(item)\" is neither a CIDR nor a host name.")
            } else {
                policy.allowedHosts.insert(item.lowercased())
            }
        }
        return policy
    }

    /// Why a connection to `address` for a URL naming `host` is refused; nil when it is allowed.
    public func refusal(host: String, address: [UInt8]) -> String? {
        if allowedHosts.contains(host.lowercased()) { return nil }
        if allowedNetworks.contains(where: { $0.contains(address) }) { return nil }
        // An IPv6 address that carries an IPv4 address is judged by that address too.
        var candidates = [address]
        for embedded in Self.embeddedIPv4(address) {
            if allowedNetworks.contains(where: { $0.contains(embedded) }) { return nil }
            candidates.append(embedded)
        }
        for candidate in candidates {
            if let network = Self.blocked.first(where: { $0.contains(candidate) }) {
                return "The webhook URL's host \(host) resolves to \(Self.format(address)), inside \(network), which alertd does not call by default (loopback, private, link-local, CGNAT, multicast and reserved addresses are refused). If this receiver is meant to be internal, add it to ALERTD_WEBHOOK_ALLOW."
            }
        }
        return nil
    }

    /// The IPv4 addresses an IPv6 address carries: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
    /// (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d), 6to4 (2002:aabb:ccdd::) and Teredo (2001:0::, whose
    /// server address is in clear and client address inverted), any of which a network may route
    /// to the IPv4 address inside.
    static func embeddedIPv4(_ address: [UInt8]) -> [[UInt8]] {
        guard address.count == 16 else { return [] }
        let head = Array(address.prefix(12))
        let zeros = [UInt8](repeating: 0, count: 12)
        if head == zeros[0..<10] + [0xFF, 0xFF] || head == [0, 0x64, 0xFF, 0x9B] + zeros[0..<8] {
            return [Array(address.suffix(4))]
        }
        if head == zeros && address[12..<16].contains(where: { $0 != 0 }) && Array(address[12..<16]) != [0, 0, 0, 1] {
            return [Array(address.suffix(4))]
        }
        if address[0] == 0x20 && address[1] == 0x02 {
            return [Array(address[2..<6])]
        }
        if address[0] == 0x20 && address[1] == 0x01 && address[2] == 0 && address[3] == 0 {
            return [Array(address[4..<8]), address.suffix(4).map { $0 ^ 0xFF }]
        }
        return []
    }

    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    static func format(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil }
        return ok ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
    }
}
