/// Normalisations written as elementwise chains over per-channel parameters: they fuse into the
/// kernel that consumes them, or into a convolution's epilogue when they follow one.
extension Tensor {
    /// Batch normalisation at inference: (x - mean) / sqrt(variance + eps) · weight + bias,
    /// with the per-channel statistics and parameters ([C], C the size of `axis`) broadcast
    /// over the other axes. After a conv2d it becomes the convolution's epilogue (one pass
    /// over the output); `BatchNorm2d` can also fold it into the convolution's weights.
    public func batchNorm(mean: Tensor, variance: Tensor, weight: Tensor? = nil, bias: Tensor? = nil,
                          eps: Float = 1e-5, axis: Int = 1) -> Tensor {
        Tensor.checked(shape) { () throws(TensorError) in
            let a = try normalized(axis, op: "batchNorm")
            let c = shape[a]
            let given = [mean, variance] + [weight, bias].compactMap { $0 }
            try require(given.allSatisfy { $0.scalarCount == c }, "batchNorm", [shape] + given.map(\.shape),
                        "statistics and parameters need one value per channel of axis \(a) (\(c))")
            let along = [c] + [Int](repeating: 1, count: rank - a - 1)
            var scale = (variance.reshaped(along) + eps).rsqrt()
            if let weight { scale = scale * weight.reshaped(along) }
            var y = (self - mean.reshaped(along)) * scale
            if let bias { y = y + bias.reshaped(along) }
            return y
        }
    }
}
