import Foundation
import LazyTensor

/// Rotary position embedding (RoPE) as LLaMA and its family apply it: each pair of features
/// of a head is rotated by position · theta^(-2i/d). The pairs are (i, i + d/2) in Hugging Face
/// checkpoints and (2i, 2i + 1) in GGUF files, whose converter permutes the rows of the query
/// and key projections into that order (the dot products of queries and keys are the same).
/// The cosine and sine tables are
/// computed once, in double precision, for `maxPositions`; a call picks the rows of its
/// positions (read when the kernel runs, so decode steps share a plan) and the rotation fuses
/// into one kernel with the head split.
public struct RotaryEmbedding: Sendable {
    /// Which features form a rotated pair.
    public enum Pairing: String, Sendable {
        /// (i, i + d/2): transformers' rotate_half.
        case halves
        /// (2i, 2i + 1): ggml's, and GPT-J's.
        case interleaved
    }

    public let headDim: Int
    public let pairing: Pairing
    public let theta: Double
    public let maxPositions: Int
    /// [maxPositions, headDim / 2] each.
    public let cos: Tensor
    public let sin: Tensor

    /// `scaling`: how the frequencies are stretched (see `RopeScaling`).
    public init(headDim: Int, maxPositions: Int, theta: Double = 10_000, pairing: Pairing = .halves,
                scaling: RopeScaling = .none) throws(ModelError) {
        guard headDim % 2 == 0, headDim > 0, maxPositions > 0, theta > 1 else {
            throw .badConfig("rotary embedding needs an even head width, positions and theta > 1 (got \(headDim), \(maxPositions), \(theta))")
        }
        try scaling.validate(headDim: headDim)
        self.headDim = headDim
        self.pairing = pairing
        self.theta = theta
        self.maxPositions = maxPositions
        let half = headDim / 2
        let frequencies = scaling.inverseFrequencies(headDim: headDim, theta: theta)
        var c = [Float](repeating: 0, count: maxPositions * half), s = c
        for p in 0..<maxPositions {
            for i in 0..<half {
                // As transformers computes it: the frequency and the angle in float32.
                let angle = Double(Float(p) * frequencies[i])
                c[p * half + i] = Float(Foundation.cos(angle))
                s[p * half + i] = Float(Foundation.sin(angle))
            }
        }
        cos = Tensor(shape: [maxPositions, half], scalars: c)
        sin = Tensor(shape: [maxPositions, half], scalars: s)
    }

    /// The cosines and sines of some positions, [1, 1, T, headDim / 2] each: looked up once
    /// and shared by every layer (and by q and k) of a forward pass.
    public struct Rotation: Sendable {
        public let cos: Tensor
        public let sin: Tensor
    }

    /// The rotation at `positions` (int32 / int64 [T]).
    public func rotation(positions: Tensor) -> Rotation {
        let (t, half) = (positions.scalarCount, headDim / 2)
        return Rotation(cos: cos.take(positions, axis: 0).reshaped([1, 1, t, half]), sin: sin.take(positions, axis: 0).reshaped([1, 1, t, half]))
    }

    /// The rotation at positions start ..< start + count.
    public func rotation(start: Int, count: Int) -> Rotation {
        rotation(positions: Tensor(shape: [count], integers: Array(start..<(start + count))))
    }

    /// Rotates x [B, heads, T, headDim]: one kernel (the two halves, or the even and odd
    /// features, computed and joined).
    public func callAsFunction(_ x: Tensor, _ r: Rotation) -> Tensor {
        let half = headDim / 2
        switch pairing {
        case .halves:
            let x1 = x[.ellipsis, ..<half], x2 = x[.ellipsis, half...]
            return Tensor.concatenate([x1 * r.cos - x2 * r.sin, x2 * r.cos + x1 * r.sin], axis: -1)
        case .interleaved:
            // Even and odd features are strided views; the pair is stacked back along a new
            // last axis, which merges into the head's width for free.
            let pairs = x.reshaped(Array(x.shape.dropLast()) + [half, 2])
            let even = pairs[.ellipsis, 0], odd = pairs[.ellipsis, 1]
            return Tensor.stacked([even * r.cos - odd * r.sin, odd * r.cos + even * r.sin], axis: -1).reshaped(x.shape)
        }
    }

    /// Rotates x [B, heads, T, headDim] as `callAsFunction` does, but gives each head's features
    /// in halves order whatever the pairing: the first feature of every pair, then the second.
    /// For attention that is the same thing: q·k is unchanged when q and k are permuted alike
    /// (and the values are not rotated). Interleaved pairs stacked back along a new axis of 2
    /// make a kernel whose inner loop is 2 long; this one's are headDim / 2 (SmolLM2's RoPE
    /// kernel: 25 -> 13 us a head group).
    public func rotatedForAttention(_ x: Tensor, _ r: Rotation) -> Tensor {
        guard pairing == .interleaved else { return self(x, r) }
        let pairs = x.reshaped(Array(x.shape.dropLast()) + [headDim / 2, 2])
        let even = pairs[.ellipsis, 0], odd = pairs[.ellipsis, 1]
        return Tensor.concatenate([even * r.cos - odd * r.sin, odd * r.cos + even * r.sin], axis: -1)
    }

    /// Rotates x [B, heads, T, headDim] at `positions` (int64 [T]).
    public func callAsFunction(_ x: Tensor, positions: Tensor) -> Tensor { self(x, rotation(positions: positions)) }
}
