import AlertdSupport
import Foundation

/// A Swift value sent to PostgreSQL as a query parameter, in PostgreSQL's text format.
public protocol PostgresEncodable: Sendable {
    var postgresText: String { get }
}

/// A Swift value read from a result column in PostgreSQL's text format.
public protocol PostgresDecodable: Sendable {
    init(postgresText: String) throws
    /// Reads a column value that may be NULL; non-optional types throw on NULL.
    static func decode(postgresText: String?, column: String) throws -> Self
}

extension PostgresDecodable {
    public static func decode(postgresText: String?, column: String) throws -> Self {
        guard let postgresText else {
            throw PostgresError(.decodingFailed, "Column \(column) is NULL where a \(Self.self) was expected.")
        }
        do {
            return try Self(postgresText: postgresText)
        } catch let error as PostgresError {
            throw error
        } catch {
            throw PostgresError(.decodingFailed, "Column \(column) does not hold a \(Self.self).")
        }
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init(postgresText: String) throws {
        self = try Wrapped(postgresText: postgresText)
    }

    public static func decode(postgresText: String?, column: String) throws -> Self {
        guard let postgresText else { return nil }
        return try Wrapped.decode(postgresText: postgresText, column: column)
    }
}

struct PostgresTextDecodingError: Error {
    let type: Any.Type
    let text: String
}

extension String: PostgresEncodable, PostgresDecodable {
    public var postgresText: String { self }
    public init(postgresText: String) { self = postgresText }
}

extension PostgresEncodable where Self: FixedWidthInteger {
    public var postgresText: String { String(self) }
}

extension PostgresDecodable where Self: FixedWidthInteger {
    public init(postgresText: String) throws {
        guard let value = Self(postgresText, radix: 10) else {
            throw PostgresTextDecodingError(type: Self.self, text: postgresText)
        }
        self = value
    }
}

extension Int: PostgresEncodable, PostgresDecodable {}
extension Int32: PostgresEncodable, PostgresDecodable {}
extension Int64: PostgresEncodable, PostgresDecodable {}

extension Double: PostgresEncodable, PostgresDecodable {
    public var postgresText: String {
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return String(self)
    }
    public init(postgresText: String) throws {
        switch postgresText {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default:
            guard let value = Double(postgresText) else { throw PostgresTextDecodingError(type: Double.self, text: postgresText) }
            self = value
        }
    }
}

extension Bool: PostgresEncodable, PostgresDecodable {
    public var postgresText: String { self ? "t" : "f" }
    public init(postgresText: String) throws {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: throw PostgresTextDecodingError(type: Bool.self, text: postgresText)
        }
    }
}

extension UUID: PostgresEncodable, PostgresDecodable {
    /// The lower-case 36-character form, as PostgreSQL writes it. Written byte by byte: a
    /// claim and its outcome turn a few hundred ids to text and back, and Foundation's
    /// `uuidString` and `UUID(uuidString:)` go through printf and scanf.
    public var postgresText: String {
        let digits: StaticString = "0123456789abcdef"
        return withUnsafeBytes(of: uuid) { raw in
            String(unsafeUninitializedCapacity: 36) { text in
                var position = 0
                for (offset, byte) in raw.enumerated() {
                    if offset == 4 || offset == 6 || offset == 8 || offset == 10 {
                        text[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    text[position] = digits.utf8Start[Int(byte >> 4)]
                    text[position + 1] = digits.utf8Start[Int(byte & 0x0F)]
                    position += 2
                }
                return position
            }
        }
    }

    public init(postgresText: String) throws {
        guard let value = Self.parse(postgresText) else { throw PostgresTextDecodingError(type: UUID.self, text: postgresText) }
        self = value
    }

    /// The 36-character form, hyphens in their places, hex digits in either case; nil otherwise.
    static func parse(_ text: String) -> UUID? {
        var text = text
        return text.withUTF8 { bytes -> UUID? in
            guard bytes.count == 36 else { return nil }
            func nibble(_ byte: UInt8) -> UInt8? {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
                default: nil
                }
            }
            var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            let parsed = withUnsafeMutableBytes(of: &value) { raw -> Bool in
                var position = 0
                for offset in 0..<16 {
                    if offset == 4 || offset == 6 || offset == 8 || offset == 10 {
                        guard bytes[position] == UInt8(ascii: "-") else { return false }
                        position += 1
                    }
                    guard let high = nibble(bytes[position]), let low = nibble(bytes[position + 1]) else { return false }
                    raw[offset] = high << 4 | low
                    position += 2
                }
                return true
            }
            return parsed ? UUID(uuid: value) : nil
        }
    }
}

extension Date: PostgresEncodable, PostgresDecodable {
    /// An ISO 8601 instant in UTC with microseconds, which PostgreSQL reads as a timestamptz.
    public var postgresText: String {
        PostgresTimestamp.format(self)
    }

    /// Reads a timestamptz (with its offset) or a timestamp (taken as UTC, the session's time zone).
    public init(postgresText: String) throws {
        guard let value = PostgresTimestamp.parse(postgresText) else {
            throw PostgresTextDecodingError(type: Date.self, text: postgresText)
        }
        self = value
    }
}

/// A value that may stand for SQL NULL: an optional, inside an array parameter.
protocol PostgresNullable {
    var isNull: Bool { get }
}

extension Optional: PostgresNullable {
    var isNull: Bool { self == nil }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    /// Only meaningful inside an array, where nil is written as NULL; a nil query parameter is
    /// sent as NULL by the session.
    public var postgresText: String { self?.postgresText ?? "" }
}

extension Array: PostgresEncodable where Element: PostgresEncodable {
    /// A one-dimensional array literal, every element quoted, nil elements as NULL.
    public var postgresText: String {
        // Built as UTF-8 bytes: the record statements send thousands of elements at a time.
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        let nullable = Element.self is any PostgresNullable.Type
        for (index, element) in enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            if nullable, (element as? PostgresNullable)?.isNull == true {
                bytes += "NULL".utf8
                continue
            }
            bytes.append(UInt8(ascii: "\""))
            for byte in element.postgresText.utf8 {
                if byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Array: PostgresDecodable where Element: PostgresDecodable {
    /// Reads a one-dimensional array; a NULL element is an error unless `Element` is optional.
    public init(postgresText: String) throws {
        guard let elements = PostgresArrayLiteral.parse(postgresText) else {
            throw PostgresTextDecodingError(type: Self.self, text: postgresText)
        }
        self = try elements.map { try Element.decode(postgresText: $0, column: "array element") }
    }
}

/// PostgreSQL's text form of a one-dimensional array: `{a,"b c",NULL}`.
enum PostgresArrayLiteral {
    static func parse(_ text: String) -> [String?]? {
        var characters = Substring(text)
        // An explicit lower bound, as in `[0:1]={a,b}`, comes before the braces.
        if characters.first == "[", let equals = characters.firstIndex(of: "=") {
            characters = characters[characters.index(after: equals)...]
        }
        guard characters.first == "{", characters.last == "}" else { return nil }
        let body = characters.dropFirst().dropLast()
        if body.isEmpty { return [] }

        var elements: [String?] = []
        var current = ""
        var quoted = false
        var wasQuoted = false
        var escaping = false
        for character in body {
            if escaping {
                current.append(character)
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else if character == "\"" {
                quoted.toggle()
                wasQuoted = true
            } else if character == "," && !quoted {
                elements.append(wasQuoted || current != "NULL" ? current : nil)
                current = ""
                wasQuoted = false
            } else if character == "{" && !quoted {
                return nil // multi-dimensional arrays are not read here
            } else {
                current.append(character)
            }
        }
        guard !quoted, !escaping else { return nil }
        elements.append(wasQuoted || current != "NULL" ? current : nil)
        return elements
    }
}

/// PostgreSQL's ISO text form of timestamps: `2025-11-22 10:30:00.123456+00`.
public enum PostgresTimestamp {
    public static func format(_ date: Date) -> String {
        let microseconds = (date.timeIntervalSince1970 * 1_000_000).rounded()
        let seconds = Int64((microseconds / 1_000_000).rounded(.down))
        let fraction = Int64(microseconds) - seconds * 1_000_000
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        // `2025-11-22T10:30:00.000000Z`, digit by digit: String(format:) is slow, and a batch
        // of outcomes formats a thousand of these.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(27)
        func digits(_ value: Int64, _ count: Int) {
            var divisor: Int64 = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8((rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int64(parts.tm_year) + 1900, 4)
        bytes.append(UInt8(ascii: "-"))
        digits(Int64(parts.tm_mon) + 1, 2)
        bytes.append(UInt8(ascii: "-"))
        digits(Int64(parts.tm_mday), 2)
        bytes.append(UInt8(ascii: "T"))
        digits(Int64(parts.tm_hour), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int64(parts.tm_min), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int64(parts.tm_sec), 2)
        bytes.append(UInt8(ascii: "."))
        digits(fraction, 6)
        bytes.append(UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func parse(_ text: String) -> Date? {
        // yyyy-mm-dd[ T]hh:mm:ss[.ffffff][(+|-)hh[:mm[:ss]]]
        let scalars = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= scalars.count else { return nil }
            var value = 0
            for byte in scalars[range] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard scalars.count >= 19,
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }

        var index = 19
        var fraction = 0.0
        if index < scalars.count, scalars[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            while index < scalars.count, scalars[index] >= 48, scalars[index] <= 57 {
                fraction += Double(scalars[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offsetSeconds = 0
        if index < scalars.count, scalars[index] == UInt8(ascii: "+") || scalars[index] == UInt8(ascii: "-") {
            let sign = scalars[index] == UInt8(ascii: "-") ? -1 : 1
            guard let hours = number((index + 1)..<(index + 3)) else { return nil }
            var minutes = 0
            var seconds = 0
            if index + 3 < scalars.count, scalars[index + 3] == UInt8(ascii: ":") {
                minutes = number((index + 4)..<(index + 6)) ?? 0
                if index + 6 < scalars.count, scalars[index + 6] == UInt8(ascii: ":") {
                    seconds = number((index + 7)..<(index + 9)) ?? 0
                }
            }
            offsetSeconds = sign * (hours * 3600 + minutes * 60 + seconds)
        } else if index < scalars.count, scalars[index] == UInt8(ascii: "Z") {
            offsetSeconds = 0
        }

        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let epochSeconds = timegm(&parts)
        return Date(timeIntervalSince1970: Double(epochSeconds - offsetSeconds) + fraction)
    }
}

/// A string enum is sent and read as its raw value; a value outside the enum does not decode.
extension PostgresEncodable where Self: RawRepresentable, RawValue == String {
    public var postgresText: String { rawValue }
}

extension PostgresDecodable where Self: RawRepresentable, RawValue == String {
    public init(postgresText: String) throws {
        guard let value = Self(rawValue: postgresText) else {
            throw PostgresTextDecodingError(type: Self.self, text: postgresText)
        }
        self = value
    }
}
