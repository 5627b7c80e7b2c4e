import Logging

extension AlertDelivery {
    /// The delivery path as a configuration sets it up: signing secrets, links, retry backoff;
    /// `limits` the message limits' counts (nil: no message is held, as for a test).
    public init(
        configuration: AlertdConfiguration, templates: AlertTemplates, webhooks: WebhookClient, smtp: SMTPClient?, limits: MessageLimits? = nil,
        onSMTPSession: @escaping @Sendable (SMTPSessionFailure?) -> Void = { _ in }, logger: Logger
    ) {
        self.init(
            templates: templates, webhooks: webhooks, signer: configuration.webhookSigner, signing: configuration.webhookSigning, smtp: smtp, linkBase: configuration.linkBaseURL,
            retryBackoff: configuration.retryBackoff, maxAge: configuration.destinations.maxAge,
            limits: limits, onSMTPSession: onSMTPSession, logger: logger
        )
    }
}
