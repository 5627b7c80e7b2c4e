import Foundation

/// The benchmark's mail server: enough ESMTP (PIPELINING, 8BITMIME; no TLS, no AUTH) to accept
/// every message, each `Message-ID` noted (without its angle brackets), nothing else kept. It
/// takes far more messages per second than alertd sends (`alertd bench` measures it alone first).
typealias BenchSMTPSink = LoopbackServer<SMTPReception>

struct SMTPReception: BenchProtocol {
    let greeting = Array("220 alertd-bench ESMTP\r\n".utf8)
    private(set) var closing = false
    private var inData = false
    private var inHeaders = false
    private var messageID: String?

    /// Every whole line: a command answered, or a line of a message.
    mutating func consume(_ input: [UInt8], start: inout Int, output: inout [UInt8]) -> [String] {
        var accepted: [String] = []
        while let end = find([13, 10], in: input, from: start) {
            let line = input[start..<end]
            start = end + 2
            if inData {
                if line.count == 1 && line.first == UInt8(ascii: ".") {
                    inData = false
                    accepted.append(messageID ?? "")
                    messageID = nil
                    output += Array("250 2.0.0 accepted\r\n".utf8)
                } else if inHeaders {
                    if line.isEmpty {
                        inHeaders = false
                    } else if hasPrefix(line, "message-id:") {
                        messageID = String(decoding: line.dropFirst(11), as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " <>"))
                    }
                }
                continue
            }
            switch String(decoding: line.prefix(4), as: UTF8.self).uppercased() {
            case "EHLO": output += Array("250-alertd-bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n".utf8)
            case "HELO": output += Array("250 alertd-bench\r\n".utf8)
            case "MAIL", "RCPT", "RSET", "NOOP": output += Array("250 2.0.0 OK\r\n".utf8)
            case "DATA":
                inData = true
                inHeaders = true
                output += Array("354 go ahead\r\n".utf8)
            case "QUIT":
                output += Array("221 2.0.0 bye\r\n".utf8)
                closing = true
            default: output += Array("502 5.5.2 not implemented\r\n".utf8)
            }
        }
        return accepted
    }
}
