import AlertdSupport
/// An error from PostgreSQL or from talking to it.
///
/// `description` is safe to log and show: every message that reaches it has passed through
/// ``SecretRedactor``, so it never carries a password.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-readable kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// The conninfo string or URI does not parse.
        public static let invalidConnectionString = Code("invalid_connection_string")
        /// The server could not be reached or refused the connection.
        public static let connectionFailed = Code("connection_failed")
        /// The connection broke while in use.
        public static let connectionLost = Code("connection_lost")
        /// The server rejected a statement; `sqlState` says why.
        public static let queryFailed = Code("query_failed")
        /// A value in a result could not be read as the type asked for.
        public static let decodingFailed = Code("decoding_failed")
        /// The operation was cancelled before it finished.
        public static let cancelled = Code("cancelled")
        /// The connection was closed by its owner.
        public static let closed = Code("closed")

        public var description: String { rawValue }
    }

    public var code: Code
    /// What went wrong, in words a person can act on.
    public var message: String
    /// The five-character SQLSTATE of a server error, such as `23505`.
    public var sqlState: String?
    public var detail: String?
    public var hint: String?

    public init(_ code: Code, _ message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
    }

    public var description: String {
        var text = message
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail, !detail.isEmpty { text += "\nDETAIL: \(detail)" }
        if let hint, !hint.isEmpty { text += "\nHINT: \(hint)" }
        return text
    }

    /// The server refused the statement because of a unique, foreign-key or check constraint.
    public var isConstraintViolation: Bool { sqlState?.hasPrefix("23") ?? false }
}
