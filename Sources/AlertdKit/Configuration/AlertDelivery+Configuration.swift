import Logging

extension AlertDelivery {
    /// The delivery path as a configuration sets it up: signing secrets, links, retry backoff.
    public init(
        configuration: AlertdConfiguration, templates: AlertTemplates, webhooks: WebhookClient, smtp: SMTPClient?,
        onSMTPSession: @escaping @Sendable (SMTPSessionFailure?) -> Void = { _ in }, logger: Logger
    ) {
        self.init(
            templates: templates, webhooks: webhooks, signer: configuration.webhookSigner, signing: configuration.webhookSigning, smtp: smtp, linkBase: configuration.linkBaseURL,
            retryBackoff: configuration.retryBackoff, maxAge: configuration.destinations.maxAge, onSMTPSession: onSMTPSession, logger: logger
        )
    }
}
