import AlertdSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The benchmark's mail server: enough ESMTP (PIPELINING, 8BITMIME; no TLS, no AUTH) to accept
/// every message, noting when each `Message-ID` first arrived, and nothing else kept.
///
/// One thread (`bench-smtp`) runs a poll(2) loop over every session, so that it takes far more
/// messages per second than alertd sends (`alertd bench` measures it alone first).
final class BenchSMTPSink: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let wake: (read: Int32, write: Int32)
    private let stopped = DispatchSemaphore(value: 0)
    // Invariant: `arrivals` and `messages` are read and written with `lock` held.
    private let lock = NSLock()
    private var arrivals: [String: ContinuousClock.Instant] = [:]
    private var messages = 0

    private init(port: Int, listener: Int32, wake: (Int32, Int32)) {
        self.port = port
        self.listener = listener
        self.wake = wake
    }

    static func start() throws -> BenchSMTPSink {
        let socket = try ListeningSocket.open(host: "127.0.0.1", port: 0, backlog: 128)
        let sink = BenchSMTPSink(port: socket.port, listener: socket.fd, wake: try ListeningSocket.wakePipe())
        Thread {
            BlockingWorker.nameCurrentThread("bench-smtp")
            sink.serve()
        }.start()
        return sink
    }

    func stop() {
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
        stopped.wait()
    }

    /// Messages accepted so far, duplicates included.
    var messageCount: Int { lock.withLock { messages } }

    /// When each Message-ID (without its angle brackets) first arrived; forgets them.
    func takeArrivals() -> [String: ContinuousClock.Instant] {
        lock.withLock {
            defer { arrivals = [:] }
            return arrivals
        }
    }

    private struct Session {
        var input: [UInt8] = []
        var start = 0
        var output: [UInt8] = Array("220 alertd-bench ESMTP\r\n".utf8)
        var inData = false
        var inHeaders = false
        var messageID: String?
        var closing = false
    }

    private func serve() {
        var sessions: [Int32: Session] = [:]
        defer {
            for fd in sessions.keys { close(fd) }
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
            for (fd, session) in sessions {
                fds.append(pollfd(fd: fd, events: Int16(session.output.isEmpty ? POLLIN : POLLIN | POLLOUT), revents: 0))
            }
            if poll(&fds, nfds_t(fds.count), 1_000) < 0 && errno != EINTR { return }
            if fds[0].revents != 0 { return }
            if fds[1].revents != 0 {
                while let fd = ListeningSocket.accept(listener, noDelay: true) { sessions[fd] = Session() }
            }
            for entry in fds.dropFirst(2) {
                guard var session = sessions[entry.fd] else { continue }
                var open = true
                if entry.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    let count = buffer.withUnsafeMutableBytes { recv(entry.fd, $0.baseAddress, $0.count, 0) }
                    if count > 0 {
                        session.input += buffer[0..<count]
                        handleLines(&session)
                    } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                        open = false
                    }
                }
                if open && !session.output.isEmpty {
                    let sent = session.output.withUnsafeBytes { send(entry.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if sent > 0 {
                        session.output.removeFirst(sent)
                    } else if sent < 0 && errno != EAGAIN && errno != EINTR {
                        open = false
                    }
                }
                if session.closing && session.output.isEmpty { open = false }
                if open {
                    sessions[entry.fd] = session
                } else {
                    close(entry.fd)
                    sessions[entry.fd] = nil
                }
            }
        }
    }

    /// Answers every whole line of the session's input: commands, or the lines of a message.
    private func handleLines(_ session: inout Session) {
        var accepted: [String] = []
        while let end = BenchReceiver.find([13, 10], in: session.input, from: session.start) {
            let line = session.input[session.start..<end]
            session.start = end + 2
            if session.inData {
                if line.count == 1 && line.first == UInt8(ascii: ".") {
                    session.inData = false
                    accepted.append(session.messageID ?? "")
                    session.messageID = nil
                    session.output += Array("250 2.0.0 accepted\r\n".utf8)
                } else if session.inHeaders {
                    if line.isEmpty {
                        session.inHeaders = false
                    } else if BenchReceiver.hasPrefix(line, "message-id:") {
                        let value = String(decoding: line.dropFirst(11), as: UTF8.self)
                        session.messageID = value.trimmingCharacters(in: CharacterSet(charactersIn: " <>"))
                    }
                }
                continue
            }
            let verb = String(decoding: line.prefix(4), as: UTF8.self).uppercased()
            switch verb {
            case "EHLO": session.output += Array("250-alertd-bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n".utf8)
            case "HELO": session.output += Array("250 alertd-bench\r\n".utf8)
            case "MAIL", "RCPT", "RSET", "NOOP": session.output += Array("250 2.0.0 OK\r\n".utf8)
            case "DATA":
                session.inData = true
                session.inHeaders = true
                session.output += Array("354 go ahead\r\n".utf8)
            case "QUIT":
                session.output += Array("221 2.0.0 bye\r\n".utf8)
                session.closing = true
            default: session.output += Array("502 5.5.2 not implemented\r\n".utf8)
            }
        }
        if session.start == session.input.count {
            session.input.removeAll(keepingCapacity: true)
            session.start = 0
        } else if session.start > 65_536 {
            session.input.removeFirst(session.start)
            session.start = 0
        }
        guard !accepted.isEmpty else { return }
        let now = ContinuousClock.now
        lock.withLock {
            messages += accepted.count
            for id in accepted where !id.isEmpty && arrivals[id] == nil { arrivals[id] = now }
        }
    }
}
