/// An error alertd reports to the person running it: what went wrong and what to do about it.
///
/// `description` is shown as is; whoever builds one makes sure it holds no secret.
public struct AlertdError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }

        public static let configuration = Code("configuration")
        public static let sqlFilesNotFound = Code("sql_files_not_found")
        public static let platformMissing = Code("platform_missing")
        public static let platformExists = Code("platform_exists")
        public static let nothingToRollBack = Code("nothing_to_roll_back")
        public static let rollbackRefused = Code("rollback_refused")
        public static let migrationFailed = Code("migration_failed")
        public static let verificationFailed = Code("verification_failed")
        public static let notFound = Code("not_found")
        public static let sessionNotOwn = Code("session_not_own")

        public var description: String { rawValue }
    }

    public var code: Code
    public var message: String
    public var hint: String?

    public init(_ code: Code, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String {
        hint.map { "\(message)\nhint: \($0)" } ?? message
    }
}
