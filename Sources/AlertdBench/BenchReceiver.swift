import AlertdSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The benchmark's webhook receiver: HTTP/1.1 with keep-alive on loopback, answering every POST
/// 200 at once and noting when each `webhook-id` first arrived.
///
/// One thread (`bench-http`) runs a poll(2) loop over every connection; it parses no more than it
/// must (the header block, `Content-Length`, `webhook-id`), so that it can take far more requests
/// per second than alertd sends (`alertd bench` measures it alone first).
final class BenchReceiver: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let wake: (read: Int32, write: Int32)
    private let stopped = DispatchSemaphore(value: 0)
    // Invariant: `arrivals` and `requests` are read and written with `lock` held.
    private let lock = NSLock()
    private var arrivals: [String: ContinuousClock.Instant] = [:]
    private var requests = 0

    private init(port: Int, listener: Int32, wake: (Int32, Int32)) {
        self.port = port
        self.listener = listener
        self.wake = wake
    }

    static func start() throws -> BenchReceiver {
        let socket = try ListeningSocket.open(host: "127.0.0.1", port: 0, backlog: 1024)
        let receiver = BenchReceiver(port: socket.port, listener: socket.fd, wake: try ListeningSocket.wakePipe())
        Thread {
            BlockingWorker.nameCurrentThread("bench-http")
            receiver.serve()
        }.start()
        return receiver
    }

    func stop() {
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
        stopped.wait()
    }

    /// Requests received so far, duplicates included.
    var requestCount: Int { lock.withLock { requests } }

    /// When each webhook-id first arrived; forgets them.
    func takeArrivals() -> [String: ContinuousClock.Instant] {
        lock.withLock {
            defer { arrivals = [:] }
            return arrivals
        }
    }

    private struct Connection {
        var input: [UInt8] = []
        var start = 0
        var output: [UInt8] = []
    }

    private static let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8)

    private func serve() {
        var connections: [Int32: Connection] = [:]
        defer {
            for fd in connections.keys { close(fd) }
            close(listener)
            close(wake.read)
            close(wake.write)
            stopped.signal()
        }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var fds: [pollfd] = []
        while true {
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0))
            fds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
            for (fd, connection) in connections {
                fds.append(pollfd(fd: fd, events: Int16(connection.output.isEmpty ? POLLIN : POLLIN | POLLOUT), revents: 0))
            }
            if poll(&fds, nfds_t(fds.count), 1_000) < 0 && errno != EINTR { return }
            if fds[0].revents != 0 { return }
            if fds[1].revents != 0 {
                while let fd = ListeningSocket.accept(listener, noDelay: true) { connections[fd] = Connection() }
            }
            for entry in fds.dropFirst(2) where entry.revents != 0 {
                guard var connection = connections[entry.fd] else { continue }
                var open = true
                if entry.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    let count = buffer.withUnsafeMutableBytes { recv(entry.fd, $0.baseAddress, $0.count, 0) }
                    if count > 0 {
                        connection.input += buffer[0..<count]
                        handleRequests(&connection)
                    } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                        open = false
                    }
                }
                if open && !connection.output.isEmpty {
                    let sent = connection.output.withUnsafeBytes { send(entry.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if sent > 0 {
                        connection.output.removeFirst(sent)
                    } else if sent < 0 && errno != EAGAIN && errno != EINTR {
                        open = false
                    }
                }
                if open {
                    connections[entry.fd] = connection
                } else {
                    close(entry.fd)
                    connections[entry.fd] = nil
                }
            }
        }
    }

    /// Takes every whole request out of the connection's input and queues an answer for each.
    private func handleRequests(_ connection: inout Connection) {
        var ids: [String] = []
        while let headEnd = Self.find([13, 10, 13, 10], in: connection.input, from: connection.start) {
            var contentLength = 0
            var id: String?
            var lineStart = connection.start
            while lineStart < headEnd {
                let lineEnd = Self.find([13, 10], in: connection.input, from: lineStart) ?? headEnd
                let line = connection.input[lineStart..<lineEnd]
                if Self.hasPrefix(line, "content-length:") {
                    contentLength = Int(String(decoding: line.dropFirst(15), as: UTF8.self).trimmingCharacters(in: .whitespaces)) ?? 0
                } else if Self.hasPrefix(line, "webhook-id:") {
                    id = String(decoding: line.dropFirst(11), as: UTF8.self).trimmingCharacters(in: .whitespaces)
                }
                lineStart = lineEnd + 2
            }
            let end = headEnd + 4 + contentLength
            guard connection.input.count >= end else { break }
            connection.start = end
            connection.output += Self.answer
            if let id { ids.append(id) }
        }
        if connection.start == connection.input.count {
            connection.input.removeAll(keepingCapacity: true)
            connection.start = 0
        } else if connection.start > 65_536 {
            connection.input.removeFirst(connection.start)
            connection.start = 0
        }
        guard !ids.isEmpty else { return }
        let now = ContinuousClock.now
        lock.withLock {
            requests += ids.count
            for id in ids where arrivals[id] == nil { arrivals[id] = now }
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var index = start
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == needle[0] {
                var matched = true
                for offset in 1..<needle.count where haystack[index + offset] != needle[offset] {
                    matched = false
                    break
                }
                if matched { return index }
            }
            index += 1
        }
        return nil
    }

    /// Whether `line` starts with `prefix`, ASCII case-insensitively (`prefix` in lower case).
    static func hasPrefix(_ line: ArraySlice<UInt8>, _ prefix: StaticString) -> Bool {
        guard line.count >= prefix.utf8CodeUnitCount else { return false }
        return prefix.withUTF8Buffer { expected in
            zip(line, expected).allSatisfy { byte, want in (byte | 0x20) == want || byte == want }
        }
    }
}
