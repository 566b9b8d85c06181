import Foundation

/// How a model stretches RoPE's frequencies past the positions it was trained for. Each kind
/// is computed as transformers computes it (the frequencies in float32), since a kind read
/// wrongly would give other numbers without any error.
public enum RopeScaling: Sendable, Equatable {
    case none
    /// Positions divided by the factor (transformers' rope_type "linear", llama.cpp's
    /// rope.scaling.type linear).
    case linear(factor: Double)
    /// Llama 3.1's: low frequencies divided by the factor, high ones kept, the band between
    /// them interpolated (transformers' rope_type "llama3").
    case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalContext: Double)
    /// One divisor per frequency, as GGUF files of Llama 3.1 store them (rope_freqs.weight).
    case frequencyDivisors([Float])

    /// The inverse frequencies theta^(-2i/d) for i < d/2, scaled.
    func inverseFrequencies(headDim: Int, theta: Double) -> [Float] {
        let half = headDim / 2
        let base = (0..<half).map { i in Float(1 / Foundation.pow(theta, Double(2 * i) / Double(headDim))) }
        switch self {
        case .none: return base
        case let .linear(factor): return base.map { $0 / Float(factor) }
        case let .frequencyDivisors(d): return zip(base, d).map { $0 / $1 }
        case let .llama3(factor, low, high, original):
            let (f, lo, hi, context) = (Float(factor), Float(low), Float(high), Float(original))
            let lowWavelength = context / lo, highWavelength = context / hi
            return base.map { inv in
                let wavelength = 2 * Float.pi / inv
                if wavelength < highWavelength { return inv }
                if wavelength > lowWavelength { return inv / f }
                let smooth = (context / wavelength - lo) / (hi - lo)
                return (1 - smooth) * inv / f + smooth * inv
            }
        }
    }

    /// What it is checked against before use: a table of divisors must have one per frequency.
    func validate(headDim: Int) throws(ModelError) {
        switch self {
        case .none: break
        case let .linear(factor):
            guard factor >= 1, factor.isFinite else { throw .badConfig("linear rope scaling needs a factor >= 1, not \(factor)") }
        case let .llama3(factor, low, high, original):
            guard factor >= 1, factor.isFinite, low > 0, high > low, original >= 1, original.isFinite else {
                throw .badConfig("llama3 rope scaling needs factor >= 1, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings >= 1 (got \(factor), \(low), \(high), \(original))")
            }
        case let .frequencyDivisors(d):
            guard d.count == headDim / 2, d.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw .badConfig("rope frequency divisors: \(d.count) values for \(headDim / 2) frequencies, or one not positive")
            }
        }
    }
}
