/// Evaluation: turning a lazy graph into buffers, and saying beforehand what that will cost.
extension Tensor {
    /// The tensor as a contiguous buffer. A contiguous view is returned as is (no kernel, no
    /// copy); a strided view is copied (counted, reason `.output`); a lazy graph is planned and
    /// run, and the result is kept so evaluating again costs nothing.
    public func materialized() -> Tensor {
        Tensor.materialize([self])[0]
    }

    /// Evaluates several tensors in one plan, so work they share runs once.
    public static func materialize(_ tensors: [Tensor]) -> [Tensor] { materialize(tensors, copyReason: .output) }

    static func materialize(_ tensors: [Tensor], copyReason: CopyReason) -> [Tensor] {
        var results = [Tensor?](repeating: nil, count: tensors.count)
        var pending: [Int] = []
        for (i, t) in tensors.enumerated() {
            if let ready = t.readyBuffer() { results[i] = ready } else { pending.append(i) }
        }
        if !pending.isEmpty {
            let roots = pending.map { tensors[$0].node }
            let kernels = Profile.time("plan") { PlanCache.kernels(for: roots) }
            let buffers = Executor.run(kernels, roots: roots, copyReason: copyReason)
            for (k, i) in pending.enumerated() {
                roots[k].setResult(buffers[k])
                results[i] = Tensor(node: buffers[k])
            }
        }
        return results.map { $0! }
    }

    /// A contiguous copy when this tensor is not already a contiguous buffer, counted as a
    /// copy the user asked for (NumPy's ascontiguousarray).
    public func contiguous() -> Tensor {
        Tensor.materialize([self], copyReason: .userRequest)[0]
    }

    /// Returns the buffer without planning, when there is one already: a contiguous view, a
    /// cached result, or a view chain over a boundary result that strides can express.
    private func readyBuffer() -> Tensor? {
        if let n = node.realized {
            let t = Tensor(node: n)
            return Layout.isRowMajor(shape: shape, strides: t.strides) ? t : nil
        }
        // A view of an operation that is evaluated into its own buffer anyway (a reduction
        // without keepingDims, a transposed softmax) is a view of that buffer: no extra kernel.
        guard let (base, chain) = viewOfBoundary() else { return nil }
        let t = Tensor.applying(chain, to: Tensor(node: base).materialized())
        guard t.node.isBuffer, Layout.isRowMajor(shape: t.shape, strides: t.strides) else { return nil }
        node.setResult(t.node)
        return t
    }

    /// The view chain above a node that gets its own buffer (or has one), if this is one.
    private func viewOfBoundary() -> (Node, [Node])? {
        var chain: [Node] = []
        var base = node
        while case .view = base.op, base.realized == nil {
            chain.append(base)
            base = base.inputs[0]
        }
        guard !chain.isEmpty, base.isKernelBoundary || base.realized != nil else { return nil }
        return (base, chain)
    }

    /// Re-applies a chain of view nodes (outermost first) to a buffer tensor.
    private static func applying(_ chain: [Node], to buffer: Tensor) -> Tensor {
        var t = buffer
        for view in chain.reversed() {
            guard case .view(let step) = view.op else { break }
            switch step {
            case .permute(let order): t = t.permuted(order)
            case .expand: t = t.expanded(to: view.shape)
            case let .slice(axis, start, step):
                let count = view.shape[axis]
                t = count == 0 ? t.sliced(axis: axis, range: 0..<0)
                    : step > 0 ? t.sliced(axis: axis, range: start..<(start + (count - 1) * step + 1), step: step)
                    : t.sliced(axis: axis, range: (start + (count - 1) * step)..<(start + 1), step: step)
            case .reshape: t = t.reshaped(view.shape)
            }
        }
        return t
    }

    /// Forgets every cached plan and returns every cached free block to the system: for a
    /// long-idle server, or a test that wants a cold start. The next evaluation of each shape
    /// plans again.
    public static func releaseCaches() {
        PlanCache.removeAll()
        BlockPool.drain()
    }

    /// What evaluating this tensor would run: its kernels, what each reads and computes, and
    /// the bytes it would allocate and copy. Runs nothing.
    public func explain() -> String { plan().description }

    private var readyWithoutWork: Bool {
        guard let n = node.realized, case let .buffer(_, _, strides) = n.op else { return false }
        return Layout.isRowMajor(shape: shape, strides: strides)
    }

    /// The plan `materialized()` would run, without running it.
    public func plan() -> ExecutionPlan {
        if readyWithoutWork { return ExecutionPlan(kernels: []) }
        if let (base, chain) = viewOfBoundary() {
            // The views are free when they leave the base's contiguous result contiguous.
            let probe = Tensor.applying(chain, to: Tensor(storage: Storage(allocatingByteCount: 0), shape: base.shape))
            if probe.node.isBuffer, Layout.isRowMajor(shape: probe.shape, strides: probe.strides) {
                return base.realized != nil ? ExecutionPlan(kernels: []) : ExecutionPlan(kernels: Planner(roots: [base]).kernels)
            }
        }
        return ExecutionPlan(kernels: Planner(roots: [node]).kernels)
    }
}
