import LazyTensor
import WeightStore

/// PyTorch's BatchNorm2d at inference: the running statistics and the affine parameters, per
/// channel of axis 1. After a Conv2d it runs as the convolution's epilogue, or folds into its
/// weights with `Conv2d.folding(_:)`.
public struct BatchNorm2d: Sendable {
    public let runningMean: Tensor
    public let runningVariance: Tensor
    public let weight: Tensor?
    public let bias: Tensor?
    public let eps: Float

    public init(runningMean: Tensor, runningVariance: Tensor, weight: Tensor? = nil, bias: Tensor? = nil, eps: Float = 1e-5) {
        self.runningMean = runningMean
        self.runningVariance = runningVariance
        self.weight = weight
        self.bias = bias
        self.eps = eps
    }

    /// PyTorch's names: `prefix.running_mean`, `.running_var`, and `.weight`, `.bias` when affine.
    public init(store: WeightStore, prefix: String, channels: Int, eps: Float = 1e-5) throws {
        runningMean = try store.weight(prefix + ".running_mean", shape: [channels])
        runningVariance = try store.weight(prefix + ".running_var", shape: [channels])
        weight = store.info(prefix + ".weight") == nil ? nil : try store.weight(prefix + ".weight", shape: [channels])
        bias = store.info(prefix + ".bias") == nil ? nil : try store.weight(prefix + ".bias", shape: [channels])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.batchNorm(mean: runningMean, variance: runningVariance, weight: weight, bias: bias, eps: eps, axis: 1)
    }

    /// weight / sqrt(variance + eps): the per-channel factor.
    var scale: Tensor {
        let s = (runningVariance + eps).rsqrt()
        return weight.map { s * $0 } ?? s
    }

    /// bias - mean · scale: the per-channel offset after scaling.
    var shift: Tensor {
        let s = -(runningMean * scale)
        return bias.map { s + $0 } ?? s
    }
}
