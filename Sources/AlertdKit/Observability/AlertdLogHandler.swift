import Foundation
import Logging

/// alertd's log lines on standard error: plain text for a terminal, or one JSON object or one
/// logfmt line per record for a log pipeline (`--log-format` / `ALERTD_LOG_FORMAT`).
public struct AlertdLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        case text, json, logfmt
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public let format: Format
    private let label: String
    private let write: @Sendable (String) -> Void

    public init(label: String, format: Format, write: @escaping @Sendable (String) -> Void = AlertdLogHandler.standardError) {
        self.label = label
        self.format = format
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// A logger for alertd's commands, from a level and a format name.
    /// The level of `alertd run`, which logs each delivery at info.
    public static let defaultRunLevel = "info"
    /// The level of every other command, which prints what it did itself.
    public static let defaultLevel = "warning"
    public static let defaultFormat = Format.text.rawValue

    public static func logger(level name: String, format formatName: String) throws -> Logger {
        guard let level = Logger.Level(rawValue: name.lowercased()) else {
            throw AlertdError(.configuration, "Unknown log level \(name); use trace, debug, info, notice, warning, error or critical.")
        }
        guard let format = Format(rawValue: formatName.lowercased()) else {
            throw AlertdError(.configuration, "Unknown log format \(formatName); use text, json or logfmt.")
        }
        var logger = Logger(label: "alertd") { label in AlertdLogHandler(label: label, format: format) }
        logger.logLevel = level
        return logger
    }

    public static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        write(Self.line(
            time: Date(), level: event.level, message: event.message.description,
            module: event.source, fields: fields, format: format
        ))
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?,
        source: String, file: String, function: String, line: UInt
    ) {
        log(event: LogEvent(level: level, message: message, metadata: metadata, source: source, file: file, function: function, line: line))
    }

    /// One record as one line, without its newline.
    static func line(time: Date, level: Logger.Level, message: String, module: String, fields: Logger.Metadata, format: Format) -> String {
        let timestamp = Self.timestamp(time)
        let pairs = fields.sorted { $0.key < $1.key }.map { ($0.key, Self.flatten($0.value)) }
        switch format {
        case .text:
            let rendered = pairs.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
            return "\(timestamp) \(level) alertd: \(rendered.isEmpty ? "" : rendered + " ")[\(module)] \(message)"
        case .json:
            var object: [String: Any] = ["ts": timestamp, "level": level.rawValue, "msg": message, "module": module]
            for (key, value) in pairs where object[key] == nil { object[key] = value }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self)
        case .logfmt:
            let head: [(String, String)] = [("ts", timestamp), ("level", level.rawValue), ("msg", message), ("module", module)]
            return (head + pairs.filter { !["ts", "level", "msg", "module"].contains($0.0) })
                .map { "\($0.0)=\(Self.logfmtValue($0.1))" }.joined(separator: " ")
        }
    }

    static func flatten(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(flatten).joined(separator: ",")
        case .dictionary(let values): values.sorted { $0.key < $1.key }.map { "\($0.key):\(flatten($0.value))" }.joined(separator: ",")
        }
    }

    /// Bare when it can be, else quoted with `"` and `\` escaped and control characters spelled out.
    static func logfmtValue(_ value: String) -> String {
        let bare = !value.isEmpty && value.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value != 0x7F && $0 != "\"" && $0 != "=" && $0 != "\\" }
        if bare { return value }
        // Inside the quotes, the same escapes as a JSON string.
        let escaped = JSONContentType().escapeText(value)
        return "\"\(escaped)\""
    }

    static func timestamp(_ date: Date) -> String {
        // To the nearest millisecond: x.999 s is 0.99899... in binary.
        let (quotient, remainder) = Int((date.timeIntervalSince1970 * 1000).rounded()).quotientAndRemainder(dividingBy: 1000)
        var whole = remainder < 0 ? quotient - 1 : quotient
        let millis = remainder < 0 ? remainder + 1000 : remainder
        var parts = tm()
        gmtime_r(&whole, &parts)
        // Written digit by digit: String(format:) goes through NSString, and this runs for every
        // log line (a line per delivery). "yyyy-MM-ddTHH:mm:ss.SSSZ"
        var bytes = Array("0000-00-00T00:00:00.000Z".utf8)
        func put(_ value: Int, width: Int, endingAt last: Int) {
            var value = value
            for index in stride(from: last, to: last - width, by: -1) {
                bytes[index] = UInt8(48 + value % 10)
                value /= 10
            }
        }
        put(Int(parts.tm_year) + 1900, width: 4, endingAt: 3)
        put(Int(parts.tm_mon) + 1, width: 2, endingAt: 6)
        put(Int(parts.tm_mday), width: 2, endingAt: 9)
        put(Int(parts.tm_hour), width: 2, endingAt: 12)
        put(Int(parts.tm_min), width: 2, endingAt: 15)
        put(Int(parts.tm_sec), width: 2, endingAt: 18)
        put(millis, width: 3, endingAt: 22)
        return String(decoding: bytes, as: UTF8.self)
    }
}
