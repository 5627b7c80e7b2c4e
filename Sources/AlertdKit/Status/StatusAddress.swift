import Foundation

/// Where the status server listens, from `--http-address` / `ALERTD_HTTP_ADDRESS`:
/// `127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`, or `:9464` for every interface.
public struct StatusAddress: Sendable, Equatable, CustomStringConvertible {
    /// nil: every interface.
    public var host: String?
    public var port: Int

    public init(host: String?, port: Int) {
        self.host = host
        self.port = port
    }

    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        func invalid(_ why: String) -> AlertdError {
            AlertdError(.configuration, "\"\(text)\" is not an address to listen on (\(why)); give HOST:PORT, such as 127.0.0.1:9464, [::1]:9464 or :9464 for every interface.")
        }
        let hostPart: Substring
        let portPart: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else { throw invalid("no closing ]") }
            hostPart = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            let rest = trimmed[trimmed.index(after: close)...]
            guard rest.hasPrefix(":") else { throw invalid("no port") }
            portPart = rest.dropFirst()
        } else {
            guard let colon = trimmed.lastIndex(of: ":") else { throw invalid("no port") }
            hostPart = trimmed[..<colon]
            portPart = trimmed[trimmed.index(after: colon)...]
            if hostPart.contains(":") { throw invalid("an IPv6 address goes in brackets") }
        }
        guard let port = Int(portPart), (0...65_535).contains(port) else { throw invalid("the port must be a number from 0 to 65535") }
        guard hostPart.allSatisfy({ $0.isLetter || $0.isNumber || ".-:_%".contains($0) }) else { throw invalid("the host has characters no host name has") }
        self.host = hostPart.isEmpty ? nil : String(hostPart)
        self.port = port
    }

    public var description: String {
        guard let host else { return ":\(port)" }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Where a client on this machine reaches a server listening here: every interface
    /// includes loopback.
    public var local: StatusAddress {
        switch host {
        case nil, "0.0.0.0": StatusAddress(host: "127.0.0.1", port: port)
        case "::": StatusAddress(host: "::1", port: port)
        default: self
        }
    }
}
