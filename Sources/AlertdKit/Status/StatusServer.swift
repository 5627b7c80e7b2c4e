import AlertdSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server for probes and scrapes: GET and HEAD, one request per connection.
///
/// It runs on a thread of its own, `alertd-status`, with non-blocking sockets and poll(2), so a
/// client that connects and says nothing delays nobody and never touches Swift's concurrency
/// pool. The handler runs on that thread: it must be quick and must not block (it reads state
/// kept under a lock).
public final class StatusServer: @unchecked Sendable {
    public struct Response: Sendable, Equatable {
        public var status: Int
        public var contentType: String
        public var body: String
        /// Further header fields, by name.
        public var headers: [String: String]

        public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: String, headers: [String: String] = [:]) {
            self.status = status
            self.contentType = contentType
            self.body = body
            self.headers = headers
        }
    }

    public typealias Handler = @Sendable (_ path: String) -> Response

    /// Requests longer than this are refused (431): probes and scrapes send a few hundred bytes.
    static let maximumRequest = 8_192
    /// A connection that has not sent its request, or taken its answer, by then is closed.
    static let connectionTimeout: Duration = .seconds(10)
    /// Connections served at once; more wait in the kernel's accept queue.
    static let maximumConnections = 64

    /// The address bound, with the port the kernel chose when 0 was asked for.
    public let address: StatusAddress
    private let listener: Int32
    private let poller: SocketPoller
    private let handler: Handler
    /// Happens when the thread has ended and every socket is closed.
    private let ended = OneTimeEvent()

    private init(address: StatusAddress, listener: Int32, poller: SocketPoller, handler: @escaping Handler) {
        self.address = address
        self.listener = listener
        self.poller = poller
        self.handler = handler
    }

    /// Binds and listens, then serves on a new thread until `stop()`.
    public static func start(on address: StatusAddress, handler: @escaping Handler) throws -> StatusServer {
        let listener: (fd: Int32, port: Int)
        let poller: SocketPoller
        do {
            listener = try ListeningSocket.open(host: address.host, port: address.port)
            do {
                poller = try SocketPoller()
            } catch {
                close(listener.fd)
                throw error
            }
        } catch {
            throw AlertdError(.configuration, "ALERTD_HTTP_ADDRESS \(address): \(error).")
        }
        var bound = address
        bound.port = listener.port
        let server = StatusServer(address: bound, listener: listener.fd, poller: poller, handler: handler)
        let thread = Thread {
            BlockingWorker.nameCurrentThread("alertd-status")
            server.serve()
        }
        thread.start()
        return server
    }

    /// Asks the thread to stop serving and close every connection; `stopped()` waits for that.
    public func stop() {
        poller.wake()
    }

    /// Returns once the thread has ended and the port is free.
    public func stopped() async {
        await ended.wait()
    }

    /// One client: its request as it arrives, then its answer as it leaves.
    private struct Connection {
        var received: [UInt8] = []
        var answer: [UInt8]?
        var sent = 0
        let deadline: ContinuousClock.Instant
    }

    private func serve() {
        var connections: [Int32: Connection] = [:]
        defer {
            for fd in connections.keys { close(fd) }
            close(listener)
            ended.signal()
        }
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while true {
            var interest: [(fd: Int32, events: Int16)] = []
            if connections.count < Self.maximumConnections {
                interest.append((listener, Int16(POLLIN)))
            }
            for (fd, connection) in connections {
                interest.append((fd, Int16(connection.answer == nil ? POLLIN : POLLOUT)))
            }
            let now = ContinuousClock.now
            let nextDeadline = connections.values.map(\.deadline).min()
            let ready = poller.wait(interest, timeout: min(.seconds(1), max(.zero, (nextDeadline ?? now + .seconds(1)) - now)))
            if ready.woken { return }
            for entry in ready.events {
                if entry.fd == listener {
                    acceptAll(into: &connections)
                    continue
                }
                guard var connection = connections[entry.fd] else { continue }
                let open = connection.answer == nil ? read(entry.fd, into: &connection, buffer: &buffer) : send(entry.fd, from: &connection)
                if open {
                    connections[entry.fd] = connection
                } else {
                    close(entry.fd)
                    connections[entry.fd] = nil
                }
            }
            let later = ContinuousClock.now
            for (fd, connection) in connections where connection.deadline <= later {
                close(fd)
                connections[fd] = nil
            }
        }
    }

    private func acceptAll(into connections: inout [Int32: Connection]) {
        while connections.count < Self.maximumConnections, let fd = ListeningSocket.accept(listener) {
            connections[fd] = Connection(deadline: .now + Self.connectionTimeout)
        }
    }

    /// Reads what the client sent; once the request is whole, prepares the answer. False: close.
    private func read(_ fd: Int32, into connection: inout Connection, buffer: inout [UInt8]) -> Bool {
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 { return errno == EAGAIN || errno == EINTR }
        if count == 0 { return false }
        connection.received += buffer[0..<count]
        let terminator: [UInt8] = [13, 10, 13, 10]
        if let end = connection.received.firstRange(of: terminator) {
            connection.answer = answer(to: Array(connection.received[..<end.lowerBound]))
        } else if connection.received.count > Self.maximumRequest {
            connection.answer = Self.encode(Response(status: 431, body: "request too long\n"), includeBody: true)
        } else {
            return true
        }
        return send(fd, from: &connection)
    }

    /// Sends what is left of the answer. False once it is all sent (or the client is gone).
    private func send(_ fd: Int32, from connection: inout Connection) -> Bool {
        guard let answer = connection.answer else { return true }
        let count = answer[connection.sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if count < 0 { return errno == EAGAIN || errno == EINTR }
        connection.sent += count
        return connection.sent < answer.count
    }

    private func answer(to head: [UInt8]) -> [UInt8] {
        let requestLine = String(decoding: head.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return Self.encode(Response(status: 400, body: "bad request\n"), includeBody: true)
        }
        let method = String(parts[0])
        guard method == "GET" || method == "HEAD" else {
            return Self.encode(Response(status: 405, body: "only GET and HEAD\n", headers: ["Allow": "GET, HEAD"]), includeBody: true)
        }
        let path = String(parts[1].prefix { $0 != "?" })
        return Self.encode(handler(path), includeBody: method == "GET")
    }

    static func encode(_ response: Response, includeBody: Bool) -> [UInt8] {
        let body = Array(response.body.utf8)
        let head = """
            HTTP/1.1 \(response.status) \(reason(response.status))\r
            Content-Type: \(response.contentType)\r
            \(response.headers.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)\r\n" }.joined())Content-Length: \(body.count)\r
            Cache-Control: no-store\r
            Connection: close\r
            \r

            """
        return Array(head.utf8) + (includeBody ? body : [])
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}
