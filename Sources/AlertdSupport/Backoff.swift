import Foundation

/// Exponential backoff with jitter: `initial × multiplier^(attempt-1)`, capped at `maximum`, then
/// scaled by a random factor in `[1 - jitter, 1]` so that many clients do not retry in step.
public struct Backoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    public var multiplier: Double
    /// Fraction of the delay that is random, from 0 (none) to 1 (anywhere from zero to the delay).
    public var jitter: Double

    public init(initial: Duration, maximum: Duration, multiplier: Double = 2, jitter: Double = 0.2) {
        precondition(initial >= .zero && maximum >= initial, "backoff needs 0 <= initial <= maximum")
        precondition(multiplier >= 1, "backoff multiplier must be at least 1")
        precondition((0...1).contains(jitter), "backoff jitter must be within 0...1")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// Reconnecting to PostgreSQL: 100 ms, 200 ms, ... up to 30 s.
    public static let reconnect = Backoff(initial: .milliseconds(100), maximum: .seconds(30))

    /// The delay before attempt number `attempt` (1 is the first retry).
    public func delay(attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = ceilingSeconds(attempt: attempt)
        let factor = jitter == 0 ? 1 : Double.random(in: (1 - jitter)...1, using: &generator)
        return .nanoseconds(Int64((ceiling * factor * 1e9).rounded()))
    }

    public func delay(attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(attempt: attempt, using: &generator)
    }

    /// The delay before jitter, in seconds.
    func ceilingSeconds(attempt: Int) -> Double {
        let initialSeconds = initial.seconds
        let maximumSeconds = maximum.seconds
        let exponent = Double(max(attempt, 1) - 1)
        // pow overflows to +inf for large exponents, which min() then caps.
        return min(initialSeconds * pow(multiplier, exponent), maximumSeconds)
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    public var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
