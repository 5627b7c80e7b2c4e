/// The benchmark's webhook receiver: HTTP/1.1 with keep-alive, every POST answered 200 at once,
/// each `webhook-id` noted. It parses no more than it must (the header block, `Content-Length`,
/// `webhook-id`), so that it takes far more requests per second than alertd sends
/// (`alertd bench` measures it alone first).
typealias BenchReceiver = LoopbackServer<WebhookReception>

struct WebhookReception: BenchProtocol {
    let greeting: [UInt8] = []
    let closing = false
    private static let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8)

    /// Every whole request: its answer queued, its webhook-id returned.
    mutating func consume(_ input: [UInt8], start: inout Int, output: inout [UInt8]) -> [String] {
        var ids: [String] = []
        while let headEnd = find([13, 10, 13, 10], in: input, from: start) {
            var contentLength = 0
            var id: String?
            var lineStart = start
            while lineStart < headEnd {
                let lineEnd = find([13, 10], in: input, from: lineStart) ?? headEnd
                let line = input[lineStart..<lineEnd]
                if hasPrefix(line, "content-length:") {
                    contentLength = Int(String(decoding: line.dropFirst(15), as: UTF8.self).trimmingCharacters(in: .whitespaces)) ?? 0
                } else if hasPrefix(line, "webhook-id:") {
                    id = String(decoding: line.dropFirst(11), as: UTF8.self).trimmingCharacters(in: .whitespaces)
                }
                lineStart = lineEnd + 2
            }
            let end = headEnd + 4 + contentLength
            guard input.count >= end else { break }
            start = end
            output += Self.answer
            ids.append(id ?? "")
        }
        return ids
    }
}
