import CKernels

/// Where a pooled convolution's result goes (Kernel.Kind.conv2d with `pool`): the convolution
/// writes into a scratch buffer, and its images are pooled from there into the kernel's output,
/// each run of whole images as soon as its worker has finished it (still in that core's cache),
/// the rest at the end.
struct ConvolutionPooling {
    let parameters: Pool2DParameters
    let out: UnsafeMutablePointer<Float>
    /// The pooled shape, [N, C, HO, WO].
    let shape: [Int]
    /// Winograd pools each tile in its transform (ConvolutionLowering.fusesPooling): there is no
    /// scratch, and nothing is left to pool afterwards.
    let inTransform: Bool

    /// The description of a pooling that reads `images` of the contiguous scratch `convolved`.
    private func descriptor(_ convolved: UnsafePointer<Float>, convShape: [Int]) -> wk_pool_desc {
        let (c, h, w) = (convShape[1], convShape[2], convShape[3])
        let p = parameters
        return wk_pool_desc(x: convolved, sn: c * h * w, sc: h * w, sh: w, sw: 1, channels: c, h: h, w: w, ho: shape[2], wo: shape[3],
                            kh: p.kernel.0, kw: p.kernel.1, stride_h: p.stride.0, stride_w: p.stride.1, pad_h: p.padding.0,
                            pad_w: p.padding.1, is_max: p.kind == .max ? 1 : 0)
    }

    /// Pools `images` on the calling thread.
    func pool(_ convolved: UnsafePointer<Float>, convShape: [Int], images: Range<Int>) {
        var d = descriptor(convolved, convShape: convShape)
        let c = convShape[1]
        wk_pool2d_planes(&d, images.lowerBound * c, images.upperBound * c, out)
    }

    /// Pools every image, split over the workers.
    func poolAll(_ convolved: UnsafePointer<Float>, convShape: [Int]) {
        let X = LeafAccess(base: convolved, offset: 0, strides: Tensor.contiguousStrides(for: convShape), steps: [])
        Executor.pool(X, shape: convShape, parameters, into: out, outShape: shape)
    }
}
