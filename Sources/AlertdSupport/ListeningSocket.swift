import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking TCP socket listening on a host and port, for servers that run a poll(2) loop
/// on a thread of their own.
public enum ListeningSocket {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Binds (the first address `host` resolves to that binds; nil: every interface) and listens;
    /// the descriptor and the port bound (the kernel's choice when `port` is 0).
    public static func open(host: String?, port: Int, backlog: Int32 = 128) throws(Failure) -> (fd: Int32, port: Int) {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &found)
        guard status == 0, let first = found else {
            throw Failure(description: "cannot resolve the host: \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var lastError: Int32 = EADDRNOTAVAIL
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { lastError = errno; continue }
            var on: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
            if bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, backlog) == 0 {
                return (fd, boundPort(fd) ?? port)
            }
            lastError = errno
            close(fd)
        }
        throw Failure(description: "cannot listen: \(String(cString: strerror(lastError)))")
    }

    /// Accepts one waiting connection, non-blocking and closed on exec; nil when none waits.
    public static func accept(_ listener: Int32, noDelay: Bool = false) -> Int32? {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            guard fd >= 0 else { return nil }
            guard setNonBlockingAndCloseOnExec(fd) else {
                close(fd)
                continue
            }
            if noDelay {
                var on: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
            }
            return fd
        }
    }

    public static func setNonBlockingAndCloseOnExec(_ fd: Int32) -> Bool {
        fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0
    }

    /// A pipe whose write end wakes a poll loop; both ends non-blocking.
    public static func wakePipe() throws(Failure) -> (read: Int32, write: Int32) {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0, ends.allSatisfy(setNonBlockingAndCloseOnExec) else {
            throw Failure(description: "cannot make a pipe: \(String(cString: strerror(errno)))")
        }
        return (ends[0], ends[1])
    }

    static func boundPort(_ fd: Int32) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
        case AF_INET6:
            return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) } }
        default:
            return nil
        }
    }
}
