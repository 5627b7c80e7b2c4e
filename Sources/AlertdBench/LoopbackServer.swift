import AlertdSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One client's conversation with a benchmark server: it reads what arrived and says what to
/// answer. The server keeps the bytes; the protocol keeps its own state.
protocol BenchProtocol: Sendable {
    init()
    /// What the server says first (an SMTP greeting), if anything.
    var greeting: [UInt8] { get }
    /// Takes what it can from `input[start...]` (advancing `start` past it), appends the answers
    /// to `output`, and returns the ids of the messages that arrived whole.
    mutating func consume(_ input: [UInt8], start: inout Int, output: inout [UInt8]) -> [String]
    /// True once the client should be let go after its last answer.
    var closing: Bool { get }
}

/// A benchmark server on loopback: one thread running a poll(2) loop over every connection,
/// noting when each message id first arrived. The protocol is `P` (HTTP for webhooks, SMTP).
final class LoopbackServer<P: BenchProtocol>: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let poller: SocketPoller
    private let ended = OneTimeEvent()
    // Invariant: `arrivals` is read and written with `lock` held.
    private let lock = NSLock()
    private var arrivals: [String: ContinuousClock.Instant] = [:]

    private init(port: Int, listener: Int32, poller: SocketPoller) {
        self.port = port
        self.listener = listener
        self.poller = poller
    }

    /// Listens on a free loopback port and serves on a thread named `threadName`.
    static func start(threadName: String) throws -> LoopbackServer {
        let socket = try ListeningSocket.open(host: "127.0.0.1", port: 0, backlog: 1024)
        let server = LoopbackServer(port: socket.port, listener: socket.fd, poller: try SocketPoller())
        Thread {
            BlockingWorker.nameCurrentThread(threadName)
            server.serve()
        }.start()
        return server
    }

    /// Stops serving, and returns once its thread has ended.
    func stop() async {
        poller.wake()
        await ended.wait()
    }

    /// How many distinct message ids have arrived since they were last taken.
    var arrivalCount: Int {
        lock.withLock { arrivals.count }
    }

    /// When each message id first arrived; forgets them.
    func takeArrivals() -> [String: ContinuousClock.Instant] {
        lock.withLock {
            defer { arrivals = [:] }
            return arrivals
        }
    }

    private struct Connection {
        var input: [UInt8] = []
        var start = 0
        var output: [UInt8]
        var conversation = P()

        init() {
            output = conversation.greeting
        }
    }

    private func serve() {
        var connections: [Int32: Connection] = [:]
        defer {
            for fd in connections.keys { close(fd) }
            close(listener)
            ended.signal()
        }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var fds: [pollfd] = []
        while true {
            fds.removeAll(keepingCapacity: true)
            fds.append(poller.wakeEntry)
            fds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
            for (fd, connection) in connections {
                fds.append(pollfd(fd: fd, events: Int16(connection.output.isEmpty ? POLLIN : POLLIN | POLLOUT), revents: 0))
            }
            if poller.wait(&fds, timeout: .seconds(1)) { return }
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
                        received(&connection)
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
                if connection.conversation.closing && connection.output.isEmpty { open = false }
                if open {
                    connections[entry.fd] = connection
                } else {
                    close(entry.fd)
                    connections[entry.fd] = nil
                }
            }
        }
    }

    /// Hands what arrived to the protocol and notes the messages it completed.
    private func received(_ connection: inout Connection) {
        let ids = connection.conversation.consume(connection.input, start: &connection.start, output: &connection.output)
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
            for id in ids where !id.isEmpty && arrivals[id] == nil { arrivals[id] = now }
        }
    }
}

/// Finds `needle` in `haystack` from `start`.
func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
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
func hasPrefix(_ line: ArraySlice<UInt8>, _ prefix: StaticString) -> Bool {
    guard line.count >= prefix.utf8CodeUnitCount else { return false }
    return prefix.withUTF8Buffer { expected in
        zip(line, expected).allSatisfy { byte, want in (byte | 0x20) == want || byte == want }
    }
}
