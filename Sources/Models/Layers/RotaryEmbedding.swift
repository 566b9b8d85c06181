import Foundation
import LazyTensor

/// Rotary position embedding (RoPE) as LLaMA and its family apply it: each pair of features
/// (i, i + d/2) of a head is rotated by position · theta^(-2i/d). The cosine and sine tables are
/// computed once, in double precision, for `maxPositions`; a call picks the rows of its
/// positions (read when the kernel runs, so decode steps share a plan) and the rotation fuses
/// into one kernel with the head split.
public struct RotaryEmbedding: Sendable {
    public let headDim: Int
    public let theta: Double
    public let maxPositions: Int
    /// [maxPositions, headDim / 2] each.
    public let cos: Tensor
    public let sin: Tensor

    public init(headDim: Int, maxPositions: Int, theta: Double = 10_000) throws(ModelError) {
        guard headDim % 2 == 0, headDim > 0, maxPositions > 0, theta > 1 else {
            throw .badConfig("rotary embedding needs an even head width, positions and theta > 1 (got \(headDim), \(maxPositions), \(theta))")
        }
        self.headDim = headDim
        self.theta = theta
        self.maxPositions = maxPositions
        let half = headDim / 2
        var c = [Float](repeating: 0, count: maxPositions * half), s = c
        for p in 0..<maxPositions {
            for i in 0..<half {
                // As transformers computes it: the frequency in float32, the angle in float32.
                let frequency = Float(1 / Foundation.pow(theta, Double(2 * i) / Double(headDim)))
                let angle = Double(Float(p) * frequency)
                c[p * half + i] = Float(Foundation.cos(angle))
                s[p * half + i] = Float(Foundation.sin(angle))
            }
        }
        cos = Tensor(shape: [maxPositions, half], scalars: c)
        sin = Tensor(shape: [maxPositions, half], scalars: s)
    }

    /// Rotates x [B, heads, T, headDim] at `positions` (int64 [T]).
    public func callAsFunction(_ x: Tensor, positions: Tensor) -> Tensor {
        let half = headDim / 2
        let t = positions.scalarCount
        let c = cos.take(positions, axis: 0).reshaped([1, 1, t, half]), s = sin.take(positions, axis: 0).reshaped([1, 1, t, half])
        let x1 = x[.ellipsis, ..<half], x2 = x[.ellipsis, half...]
        return Tensor.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis: -1)
    }

    /// Rotates x [B, heads, T, headDim] at positions start ..< start + T.
    public func callAsFunction(_ x: Tensor, start: Int) -> Tensor {
        let t = x.shape[2]
        return self(x, positions: Tensor(shape: [t], integers: Array(start..<(start + t))))
    }
}
