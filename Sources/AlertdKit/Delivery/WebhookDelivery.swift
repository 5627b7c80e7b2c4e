import Foundation

/// One webhook attempt: the body rendered, signed the Standard Webhooks way, POSTed, and the
/// receiver's answer judged (`WebhookResponse.decision`).
struct WebhookDelivery: Sendable {
    let templates: AlertTemplates
    /// ALERTD_WEBHOOK_SECRET's secrets.
    let shared: WebhookSigner
    let signing: WebhookSigning
    let client: WebhookClient
    let linkBase: String?

    func attempt(_ alert: ClaimedAlert, startedAt: Date) async -> DeliveryReport {
        let context = AlertContext(alert: alert, linkBase: linkBase, now: startedAt)
        let subject = templates.renderSubject(context)
        guard let url = alert.recipients.first, !url.isEmpty else {
            return DeliveryReport(decision: .failed(reason: "The alert has no webhook URL."), subject: subject)
        }
        let format: WebhookFormat
        switch WebhookFormat.detect(url) {
        case .retired(let reason):
            return DeliveryReport(decision: .failed(reason: reason), subject: subject)
        case .format(let detected):
            format = alert.webhookFormat ?? detected
        }
        let body: Data
        do {
            body = format == .standard ? try templates.renderWebhookBody(context) : try templates.renderChat(format, context)
        } catch {
            return DeliveryReport(decision: .failed(reason: "\(error)"), subject: subject)
        }
        // A chat service gets its message alone: the Standard Webhooks headers and signature
        // are for receivers that verify them.
        let headers = format == .standard ? headers(alert, body: body, startedAt: startedAt) : [("Content-Type", "application/json")]
        let response = await client.send(WebhookRequest(url: url, body: body, headers: headers))
        var status: Int?
        if case .answered(let code, _, _) = response { status = code }
        return DeliveryReport(
            decision: response.decision(format: format), httpStatus: status, subject: subject, message: String(decoding: body, as: UTF8.self),
            signal: response.signal(format: format)
        )
    }

    /// The Standard Webhooks headers: the id is the alert's, the same on every attempt, so that a
    /// receiver can drop a repeat; the signature one per secret `signing` names, space-separated.
    func headers(_ alert: ClaimedAlert, body: Data, startedAt: Date) -> [(name: String, value: String)] {
        let id = "msg_\(alert.id.uuidString.lowercased())"
        let timestamp = Int(startedAt.timeIntervalSince1970)
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"),
            ("webhook-id", id),
            ("webhook-timestamp", String(timestamp)),
        ]
        let signer = signing.signer(for: alert, shared: shared)
        if !signer.secrets.isEmpty {
            headers.append(("webhook-signature", signer.signature(id: id, timestamp: timestamp, body: body)))
        }
        return headers
    }
}
