import Foundation

/// A TCP server on 127.0.0.1 that misbehaves in one set way, for tests of clients facing servers
/// that never answer or hang up: it serves connections on a thread of its own until closed.
public final class LoopbackListener: @unchecked Sendable {
    public enum Behaviour: Sendable {
        /// Accepts and says nothing.
        case silent
        /// Greets as an SMTP server, reads one command and closes the connection.
        case greetThenClose
        /// Greets as an SMTP server, answers EHLO, and then says nothing more.
        case answerEHLOThenSilent
    }

    // Invariant: `socket` and `port` are set in init; `accepted` is touched by the serving
    // thread only, and closed when the listening socket is closed.
    private let socket: Int32
    public let port: Int

    public init(behaviour: Behaviour) throws {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.socket = socket
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && listen(socket, 8) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        guard bound else { throw TestSetupError("LoopbackListener: cannot listen on 127.0.0.1: \(String(cString: strerror(errno)))") }
        port = Int(UInt16(bigEndian: address.sin_port))
        let listening = socket
        Thread {
            var held: [Int32] = []
            while true {
                let connection = accept(listening, nil, nil)
                if connection < 0 { break }
                switch behaviour {
                case .silent:
                    held.append(connection)
                case .greetThenClose:
                    _ = "220 closing.example ESMTP\r\n".withCString { write(connection, $0, strlen($0)) }
                    var buffer = [UInt8](repeating: 0, count: 512)
                    _ = read(connection, &buffer, buffer.count)
                    Foundation.close(connection)
                case .answerEHLOThenSilent:
                    _ = "220 slow.example ESMTP\r\n".withCString { write(connection, $0, strlen($0)) }
                    var buffer = [UInt8](repeating: 0, count: 512)
                    _ = read(connection, &buffer, buffer.count)
                    _ = "250 slow.example\r\n".withCString { write(connection, $0, strlen($0)) }
                    held.append(connection)
                }
            }
            held.forEach { Foundation.close($0) }
        }.start()
    }

    public func close() {
        shutdown(socket, Int32(SHUT_RDWR))
        Foundation.close(socket)
    }
}
