import AlertdSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `alertd health`: asks a running alertd's status server whether it is ready, for exec probes
/// and scripts. A plain HTTP/1.0 GET over a socket, on a thread of its own.
public enum StatusProbe {
    public struct Answer: Sendable, Equatable {
        public var status: Int
        public var body: String
    }

    /// GETs `path` from the status server at `address` (every interface: asked on loopback).
    public static func get(_ path: String, from address: StatusAddress, timeout: Duration) async throws -> Answer {
        let worker = BlockingWorker(name: "alertd-probe")
        defer { worker.shutdown() }
        return try await worker.run { try getBlocking(path, from: address.local, timeout: timeout) }
    }

    static func getBlocking(_ path: String, from address: StatusAddress, timeout: Duration) throws -> Answer {
        let deadline = ContinuousClock.now + timeout
        func failure(_ what: String) -> AlertdError {
            AlertdError(.notFound, "No answer from alertd's status server at http://\(address)\(path): \(what).", hint: "Is alertd run going, with --http-address or ALERTD_HTTP_ADDRESS set to this address?")
        }
        func remaining() -> Int32 {
            Int32(max(0, min(Double(Int32.max), (deadline - .now).seconds * 1_000)))
        }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var found: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(address.host ?? "127.0.0.1", String(address.port), &hints, &found)
        guard resolved == 0, let first = found else { throw failure(String(cString: gai_strerror(resolved))) }
        defer { freeaddrinfo(first) }

        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        defer { close(fd) }
        if connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else { throw failure(String(cString: strerror(errno))) }
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&entry, 1, remaining()) == 1 else { throw failure("timed out connecting") }
            var code: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
            guard code == 0 else { throw failure(String(cString: strerror(code))) }
        }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(address)\r\nUser-Agent: alertd-health\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count > 0 { sent += count; continue }
            guard count < 0, errno == EAGAIN || errno == EINTR else { throw failure(String(cString: strerror(errno))) }
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&entry, 1, remaining()) == 1 else { throw failure("timed out sending") }
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while received.count < 1_048_576 {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            if count > 0 { received += buffer[0..<count]; continue }
            guard errno == EAGAIN || errno == EINTR else { throw failure(String(cString: strerror(errno))) }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, remaining()) == 1 else { throw failure("timed out waiting for the answer") }
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let headEnd = text.range(of: "\r\n\r\n") else { throw failure("the answer is not HTTP") }
        let statusLine = text[..<headEnd.lowerBound].prefix { $0 != "\r" }
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else { throw failure("the answer is not HTTP") }
        return Answer(status: status, body: String(text[headEnd.upperBound...]))
    }
}
