import LazyTensor
import WeightStore

/// x / sqrt(mean(x²) + eps) · weight over the last axis (LLaMA's norm; one row kernel).
public struct RMSNorm: Sendable {
    public let weight: Tensor
    public let eps: Float

    public init(weight: Tensor, eps: Float = 1e-6) {
        self.weight = weight
        self.eps = eps
    }

    /// `prefix.weight`, of `size` values.
    public init(store: WeightStore, prefix: String, size: Int, eps: Float) throws {
        weight = try store.weight(prefix + ".weight", shape: [size])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.rmsNorm(axis: -1, eps: eps, weight: weight) }
}
