@testable import AlertdKit
import Foundation
import Testing

@Suite struct EmailMessageTests {
    static let message = EmailMessage(
        from: "alertd@example.com", to: ["ops@example.com", "payroll@example.com"],
        subject: "[alertd] Sync failed: Zürich payroll 🚨 · employees", text: "Plain ü\nline two", html: "<p>HTML ü</p>",
        messageID: "00000000-0000-0000-0000-0000000000a1.1@alertd", date: Date(timeIntervalSince1970: 1_763_807_400)
    )

    @Test func hasTheHeadersAndTheTwoAlternativesInOrder() throws {
        let text = Self.message.rendered()
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        let head = try #require(text.components(separatedBy: "\r\n\r\n").first)
        #expect(head.contains("From: alertd@example.com"))
        #expect(head.contains("To: ops@example.com, payroll@example.com"))
        #expect(head.contains("Date: Sat, 22 Nov 2025 10:30:00 +0000"))
        #expect(head.contains("Message-ID: <00000000-0000-0000-0000-0000000000a1.1@alertd>"))
        #expect(head.contains("MIME-Version: 1.0"))
        #expect(head.contains("Content-Type: multipart/alternative; boundary="))
        let plain = try #require(text.range(of: "Content-Type: text/plain; charset=utf-8"))
        let html = try #require(text.range(of: "Content-Type: text/html; charset=utf-8"))
        #expect(plain.lowerBound < html.lowerBound)
        #expect(text.contains(Data("Plain ü\nline two".utf8).base64EncodedString()))
    }

    @Test func encodesAUTF8SubjectAsEncodedWords() throws {
        let header = EmailMessage.encodeHeader(Self.message.subject)
        #expect(header.hasPrefix("=?UTF-8?B?"))
        let words = header.components(separatedBy: "\r\n ")
        #expect(words.allSatisfy { $0.count <= 75 })
        let decoded = try words.map { word -> String in
            let base64 = word.dropFirst("=?UTF-8?B?".count).dropLast(2)
            return String(decoding: try #require(Data(base64Encoded: String(base64))), as: UTF8.self)
        }.joined()
        #expect(decoded == Self.message.subject)
        #expect(EmailMessage.encodeHeader("Plain ASCII") == "Plain ASCII")
    }

    @Test func aSubjectCannotAddHeaders() {
        let header = EmailMessage.encodeHeader("Hi\r\nBcc: victim@example.com")
        #expect(!header.contains("\r\nBcc"))
        #expect(!header.contains("\nBcc"))
    }

    @Test func acceptsOnlyPlainAddresses() {
        for good in ["ops@example.com", "first.last+tag@sub.example.co.uk", "a@localhost"] {
            #expect(EmailMessage.isValidAddress(good), "\(good)")
        }
        for bad in ["", "no-at-sign", "@example.com", "ops@", "ops@example", "two@@example.com", "ops @example.com",
                    "ops@example.com\r\nBcc: x@example.com", "Name <ops@example.com>", "ops@exa mple.com", "ops@.example.com",
                    "ops,other@example.com", String(repeating: "a", count: 65) + "@example.com", "ops@ex\u{0}ample.com"] {
            #expect(!EmailMessage.isValidAddress(bad), "\(bad)")
        }
    }
}
