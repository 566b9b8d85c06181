/// Convolution and pooling over NCHW tensors, as PyTorch defines them.
public func conv2d(_ x: Tensor, _ w: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                   dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
    let guess = x.rank == 4 && w.rank == 4 ? [x.shape[0], w.shape[0], x.shape[2], x.shape[3]] : x.shape
    return Tensor.checked(guess) { () throws(TensorError) in
        let shapes = [x.shape, w.shape] + (bias.map { [$0.shape] } ?? [])
        try require(x.rank == 4 && w.rank == 4, "conv2d", shapes, "needs x [N, C, H, W] and w [O, C/groups, kh, kw]")
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        try require(groups >= 1 && c % groups == 0 && o % groups == 0 && cg == c / groups, "conv2d", shapes,
                    "\(c) input channels, \(o) outputs and weight \(w.shape) do not fit \(groups) groups")
        try require(stride.0 >= 1 && stride.1 >= 1 && dilation.0 >= 1 && dilation.1 >= 1 && padding.0 >= 0 && padding.1 >= 0,
                    "conv2d", shapes, "stride and dilation must be positive, padding not negative")
        let ho = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
        let wo = (wd + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
        try require(ho > 0 && wo > 0 && h + 2 * padding.0 >= dilation.0 * (kh - 1) + 1 && wd + 2 * padding.1 >= dilation.1 * (kw - 1) + 1,
                    "conv2d", shapes, "the kernel does not fit the padded input")
        if let bias { try require(bias.scalarCount == o, "conv2d", shapes, "bias has \(bias.scalarCount) values for \(o) outputs") }
        let p = Conv2DParameters(stride: stride, padding: padding, dilation: dilation, groups: groups, hasBias: bias != nil)
        let inputs = [x.node, w.node] + (bias.map { [$0.reshaped([o]).node] } ?? [])
        return Tensor(node: Node(.conv2d(p), inputs, shape: [n, o, ho, wo]))
    }
}

extension Tensor {
    private func pool(_ kind: Pool2DParameters.Kind, kernel: (Int, Int), stride: (Int, Int)?, padding: (Int, Int)) -> Tensor {
        let name = kind == .max ? "maxPool2d" : "avgPool2d"
        return Tensor.checked(shape) { () throws(TensorError) in
            try require(rank == 4, name, [shape], "needs [N, C, H, W]")
            let stride = stride ?? kernel
            try require(kernel.0 >= 1 && kernel.1 >= 1 && stride.0 >= 1 && stride.1 >= 1, name, [shape],
                        "kernel and stride must be positive")
            try require(padding.0 >= 0 && padding.1 >= 0 && padding.0 * 2 <= kernel.0 && padding.1 * 2 <= kernel.1, name, [shape],
                        "padding must be between 0 and half the kernel")
            try require(shape[2] + 2 * padding.0 >= kernel.0 && shape[3] + 2 * padding.1 >= kernel.1, name, [shape],
                        "the window does not fit the input")
            let ho = (shape[2] + 2 * padding.0 - kernel.0) / stride.0 + 1
            let wo = (shape[3] + 2 * padding.1 - kernel.1) / stride.1 + 1
            let p = Pool2DParameters(kind: kind, kernel: kernel, stride: stride, padding: padding)
            return Tensor(node: Node(.pool2d(p), [node], shape: [shape[0], shape[1], ho, wo]))
        }
    }

    /// Largest value in each window (padding never wins).
    public func maxPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Tensor {
        pool(.max, kernel: kernel, stride: stride, padding: padding)
    }

    /// Mean of each window, padding counted as zeros (PyTorch's count_include_pad=True).
    public func avgPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Tensor {
        pool(.average, kernel: kernel, stride: stride, padding: padding)
    }
}

public func maxPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Tensor {
    x.maxPool2d(kernel: kernel, stride: stride, padding: padding)
}
