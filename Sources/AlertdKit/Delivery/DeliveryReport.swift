/// What one attempt found, for the retry policy to turn into the recorded outcome.
struct DeliveryReport: Sendable, Equatable {
    var decision: DeliveryDecision
    var httpStatus: Int?
    var smtpReply: String?
    var subject: String?
    var message: String?
    /// Per-recipient results, as a JSON object.
    var details: String?
    /// Keys to set in the alert's metadata, as a JSON object.
    var metadataPatch: String?
    /// Said on a delivery that went only part of the way (recipients refused while others got it).
    var deliveredNote: String?
    /// A final failure because every email recipient was refused for good: recorded `bounced`.
    var refusedForGood = false
    /// What the attempt showed of the destination's health; nil when it says nothing.
    var signal: DestinationSignal?

    init(
        decision: DeliveryDecision, httpStatus: Int? = nil, smtpReply: String? = nil, subject: String? = nil, message: String? = nil,
        details: String? = nil, metadataPatch: String? = nil, deliveredNote: String? = nil, refusedForGood: Bool = false,
        signal: DestinationSignal? = nil
    ) {
        self.signal = signal
        self.decision = decision
        self.httpStatus = httpStatus
        self.smtpReply = smtpReply
        self.subject = subject
        self.message = message
        self.details = details
        self.metadataPatch = metadataPatch
        self.deliveredNote = deliveredNote
        self.refusedForGood = refusedForGood
    }
}
