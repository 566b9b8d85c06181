import LazyTensor
import WeightStore

/// Layer normalisation over the last axis with learned scale and shift (one row kernel).
public struct LayerNorm: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let eps: Float

    public init(weight: Tensor, bias: Tensor?, eps: Float = 1e-5) {
        self.weight = weight
        self.bias = bias
        self.eps = eps
    }

    /// PyTorch's names: `prefix.weight` and `prefix.bias`.
    public init(store: WeightStore, prefix: String, size: Int, eps: Float) throws {
        weight = try store.weight(prefix + ".weight", shape: [size])
        bias = try store.weight(prefix + ".bias", shape: [size])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm(axis: -1, eps: eps, weight: weight, bias: bias) }
}
