import AlertdKit
import AlertdTestSupport
import Foundation
import Testing

@Suite struct WebhookClientTests {
    @Test func postsTheBodyAndHeadersAndReadsTheAnswer() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        let client = WebhookClient(settings: .init())
        let body = Data(#"{"text":"ünïcode \"quoted\""}"#.utf8)
        let response = await client.send(WebhookRequest(
            url: receiver.url("/hooks/one"), body: body,
            headers: [("Content-Type", "application/json"), ("webhook-id", "msg_1")]
        ))
        #expect(response == .answered(status: 200, retryAfter: nil, body: #"{"received": 1}"#))
        let request = try #require(try receiver.requests().first)
        #expect(request.method == "POST")
        #expect(request.path == "/hooks/one")
        #expect(request.body == String(decoding: body, as: UTF8.self))
        #expect(request.headers["content-type"] == "application/json")
        #expect(request.headers["webhook-id"] == "msg_1")
        #expect(request.headers["user-agent"] == "alertd/\(AlertdVersion.string)")
        #expect(request.headers["expect"] == nil)
    }

    @Test func readsRetryAfterAndErrorStatuses() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        let client = WebhookClient(settings: .init())
        let request = WebhookRequest(url: receiver.url("/codes/503,410/x?retry_after=7"), body: Data("{}".utf8), headers: [])
        #expect(await client.send(request) == .answered(status: 503, retryAfter: "7", body: #"{"received": 1}"#))
        #expect(await client.send(request) == .answered(status: 410, retryAfter: "7", body: #"{"received": 2}"#))
    }

    @Test func timesOutOnAReceiverThatDoesNotAnswer() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        var settings = WebhookClient.Settings()
        settings.totalTimeout = .milliseconds(300)
        let response = await WebhookClient(settings: settings).send(WebhookRequest(url: receiver.url("/sleep/3/x"), body: Data(), headers: []))
        guard case .transportFailed(_, let timedOut) = response else {
            Issue.record("expected a timeout, got \(response)")
            return
        }
        #expect(timedOut)
    }

    @Test func failsToConnectToAClosedPortAndRefusesOtherSchemes() async throws {
        let client = WebhookClient(settings: .init())
        guard case .transportFailed(_, false) = await client.send(WebhookRequest(url: "http://127.0.0.1:1/x", body: Data(), headers: [])) else {
            Issue.record("port 1 answered")
            return
        }
        for url in ["file:///etc/passwd", "ftp://example.com/x", "gopher://x", "not a url"] {
            guard case .refused = await client.send(WebhookRequest(url: url, body: Data(), headers: [])) else {
                Issue.record("\(url) was not refused")
                continue
            }
        }
    }

    @Test func doesNotFollowRedirects() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { receiver.stop() }
        let response = await WebhookClient(settings: .init()).send(WebhookRequest(url: receiver.url("/codes/302/x"), body: Data(), headers: []))
        #expect(response == .answered(status: 302, retryAfter: nil, body: #"{"received": 1}"#))
        #expect(try receiver.requests().count == 1)
    }
}
