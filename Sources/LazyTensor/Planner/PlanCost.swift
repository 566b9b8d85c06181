/// What running a plan will cost, predicted kernel by kernel: whether it runs (a copy whose
/// source turns out contiguous aliases it instead), the bytes it allocates (its output and any
/// packed operand, patch matrix or reorder buffer) and the bytes it copies, by reason.
///
/// The executor decides those things from the layouts of the buffers it is handed. Every layout
/// is known when planning: a realized input has its strides, every kernel writes a contiguous
/// result (an alias keeps its source's strides, a write its target's). So the prediction runs
/// the executor's own decision functions (operandPacking, ConvolutionLowering, aliases,
/// rowParameterIsPacked) over those layouts, and evaluation records the same numbers.
struct KernelCost: Sendable, Equatable {
    var runs = true
    var allocated = 0
    var copied: [CopyReason: Int] = [:]
    /// How the kernel computes, where there is more than one way (a convolution's algorithm).
    var method: String?
}

enum PlanCost {
    static func costs(of kernels: [Kernel], copyReason: CopyReason) -> [KernelCost] {
        var layouts: [ObjectIdentifier: [Int]] = [:]
        // Offsets do not enter any decision; only strides and the steps a leaf is read through.
        let nowhere = UnsafePointer<Float>(bitPattern: 64)!
        func strides(_ node: Node) -> [Int] {
            if let n = node.realized, case let .buffer(_, _, s) = n.op { return s }
            return layouts[ObjectIdentifier(node)] ?? Tensor.contiguousStrides(for: node.shape)
        }
        func access(_ leaf: Program.Leaf) -> LeafAccess {
            LeafAccess(base: nowhere, offset: 0, strides: strides(leaf.node), steps: leaf.steps)
        }
        var result: [KernelCost] = []
        for kernel in kernels {
            var cost = KernelCost(runs: true, allocated: kernel.outputBytes)
            var resultStrides = Tensor.contiguousStrides(for: kernel.node.shape)
            func packing(_ p: Program, forBLAS: Bool) {
                guard case let .packed(shape) = Executor.operandPacking(p, p.leaves.map(access), forBLAS: forBLAS) else { return }
                let bytes = shape.reduce(1, *) * MemoryLayout<Float>.stride
                cost.allocated += bytes
                if p.isPureLoad { cost.copied[.pack, default: 0] += bytes }
            }
            switch kernel.kind {
            case .elementwise:
                if let source = Executor.aliasSource(kernel), Executor.aliases(kernel, access(source)) {
                    cost = KernelCost(runs: false, allocated: 0)
                    resultStrides = access(source).strides
                } else if kernel.isCopy {
                    cost.copied[copyReason] = kernel.writtenBytes
                }
            case .matmul:
                packing(kernel.programs[0], forBLAS: true)
                packing(kernel.programs[1], forBLAS: true)
            case .attention(let p):
                for i in 0..<3 { packing(kernel.programs[i], forBLAS: true) }
                if p.hasMask { packing(kernel.programs[3], forBLAS: false) }
            case let .conv2d(product, x, w, bias, pool):
                guard case let .conv2d(p) = product.op else { break }
                let lowering = Executor.ConvolutionLowering(x: x.node.shape, w: w.node.shape, out: product.shape, p,
                                                            X: access(x), W: access(w))
                cost.allocated += lowering.allocations.reduce(0, +)
                cost.copied.merge(lowering.copies, uniquingKeysWith: +)
                cost.method = lowering.method
                if let pool, lowering.fusesPooling(pool, programs: kernel.programs, product: product,
                                                   biasInPlace: bias.map { access($0).isStrided } ?? true) {
                    cost.method! += ", its " + (kernel.programs.isEmpty ? "" : "ReLU and ") + "pooling in the transform"
                } else if pool == nil, lowering.fusesReLU(programs: kernel.programs, product: product,
                                                          biasInPlace: bias.map { access($0).isStrided } ?? true) {
                    cost.method! += ", its ReLU in the kernel"
                } else if pool != nil {
                    // A pooled convolution writes its own output into a scratch buffer first.
                    cost.allocated += product.elementCount * MemoryLayout<Float>.stride
                }
            case let .row(_, axis, weight, bias):
                for leaf in [weight, bias].compactMap({ $0 }) where Executor.rowParameterIsPacked(access(leaf)) {
                    cost.copied[.pack, default: 0] += kernel.node.shape[axis] * MemoryLayout<Float>.stride
                }
            case .gather, .take:
                cost.copied[.gather] = kernel.writtenBytes
            case .convert(let from):
                cost.copied[from != kernel.node.dtype ? .convert : copyReason] = kernel.writtenBytes
            case .write:
                if kernel.isCopy { cost.copied[.cacheWrite] = kernel.writtenBytes }
                if case let .write(_, _, targetStrides, _, _) = kernel.node.op { resultStrides = targetStrides }
            case .concat, .pad:
                if kernel.isCopy { cost.copied[copyReason] = kernel.writtenBytes }
            case .reduce, .argReduce, .pool2d, .topK:
                break
            }
            layouts[ObjectIdentifier(kernel.node)] = resultStrides
            result.append(cost)
        }
        return result
    }
}
