import LazyTensor
import WeightStore

/// PyTorch's Conv2d over NCHW input: weight [O, C/groups, kh, kw], optional bias [O].
public struct Conv2d: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: (Int, Int)
    public let padding: (Int, Int)
    public let dilation: (Int, Int)
    public let groups: Int

    public init(weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                dilation: (Int, Int) = (1, 1), groups: Int = 1) {
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    /// `prefix.weight` and, when stored, `prefix.bias`.
    public init(store: WeightStore, prefix: String, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                dilation: (Int, Int) = (1, 1), groups: Int = 1) throws {
        let w = try store.weight(prefix + ".weight")
        guard w.rank == 4 else { throw ModelError.wrongShape(name: prefix + ".weight", expected: [-1, -1, -1, -1], actual: w.shape) }
        let b = store.info(prefix + ".bias") == nil ? nil : try store.weight(prefix + ".bias", shape: [w.shape[0]])
        self.init(weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    public var outChannels: Int { weight.shape[0] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    /// This convolution followed by `norm`, as one convolution: the weights scaled per output
    /// channel by weight / sqrt(variance + eps) and the bias shifted to match, computed once
    /// here (two small kernels, counted). Unfolded, the norm is already free at run time (the
    /// convolution's epilogue); folded, the epilogue is only the bias.
    public func folding(_ norm: BatchNorm2d) -> Conv2d {
        let scale = norm.scale
        let o = outChannels
        let folded = (weight * scale.reshaped([o, 1, 1, 1])).materialized()
        let shift = norm.shift
        let newBias = ((bias ?? Tensor.zeros(shape: [o])) * scale + shift).materialized()
        return Conv2d(weight: folded, bias: newBias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}
