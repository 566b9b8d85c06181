import CKernels

/// Runs a plan's kernels in order. Each kernel writes one new contiguous buffer; buffers of
/// intermediates are released as soon as their last consumer has run, so peak memory is the
/// live set of the plan, not its sum.
struct Executor {
    var results: [ObjectIdentifier: Node] = [:]
    var remaining: [ObjectIdentifier: Int]
    let roots: Set<ObjectIdentifier>
    private let copyReason: CopyReason
    /// A Replay's run: the graph runs again, so an intermediate computed before is not a
    /// recomputation to keep and count, just this run's value.
    private let replaying: Bool

    /// `consumers`: Planner.consumerCounts(kernels), when the caller keeps it (a replay).
    init(kernels: [Kernel], roots: [Node], copyReason: CopyReason, replaying: Bool = false,
         consumers: [ObjectIdentifier: Int]? = nil) {
        self.copyReason = copyReason
        self.replaying = replaying
        remaining = consumers ?? Planner.consumerCounts(kernels)
        self.roots = Set(roots.map { ObjectIdentifier($0) })
    }

    /// Runs every kernel; returns the buffer node of each root.
    static func run(_ kernels: [Kernel], roots: [Node], copyReason: CopyReason = .output, replaying: Bool = false,
                    consumers: [ObjectIdentifier: Int]? = nil) -> [Node] {
        var executor = Executor(kernels: kernels, roots: roots, copyReason: copyReason, replaying: replaying, consumers: consumers)
        for kernel in kernels { Profile.time(kernel.name, shape: kernel.node.shape) { executor.run(kernel) } }
        return roots.map { executor.results[ObjectIdentifier($0)] ?? $0.realized! }
    }

    func buffer(of node: Node) -> (Storage, Int, [Int]) {
        let n = node.realized ?? results[ObjectIdentifier(node)]!
        guard case let .buffer(storage, offset, strides) = n.op else { preconditionFailure("leaf is not a buffer") }
        return (storage, offset, strides)
    }

    func access(_ leaf: Program.Leaf) -> LeafAccess {
        let (storage, offset, strides) = buffer(of: leaf.node)
        return LeafAccess(base: UnsafePointer(storage.baseAddress.assumingMemoryBound(to: Float.self)),
                          offset: offset, strides: strides, steps: leaf.steps)
    }

    private mutating func run(_ kernel: Kernel) {
        let node = kernel.node
        if aliasIfContiguous(kernel) { return }
        if case .write = kernel.kind { runWrite(kernel); return }
        let bytes = kernel.outputBytes
        let storage = Storage(allocatingByteCount: bytes)
        // Typed kernels (indices, conversions) reinterpret this; every other kernel writes floats.
        let out = storage.baseAddress.assumingMemoryBound(to: Float.self)
        let outStrides = Tensor.contiguousStrides(for: node.shape)
        Stats.recordKernel()
        if case .matmul(let product) = kernel.kind {
            runMatmul(kernel, product: product, into: out, storage: storage)
        }
        if case let .attention(p) = kernel.kind {
            runAttention(kernel, p, into: out)
        }
        if case let .conv2d(product, x, w, bias, pool) = kernel.kind {
            runConv(kernel, product: product, x: x, w: w, bias: bias, into: out, storage: storage, pool: pool, pooledShape: node.shape)
        }
        // Inputs stay alive (and mapped) for the whole kernel.
        let keepAlive = kernel.allLeaves.map { buffer(of: $0.node).0 }
        withExtendedLifetime(keepAlive) {
            switch kernel.kind {
            case .elementwise:
                let p = kernel.programs[0]
                Executor.elementwise(p, p.leaves.map(access), into: out, strides: outStrides)
            case let .reduce(op, kept, reduced, rowMode):
                let p = kernel.programs[0]
                let n = reduced.reduce(1) { $0 * node.inputs[0].shape[$1] }
                Executor.reduce(p, p.leaves.map(access), op: op, keptRank: kept.count, reducedRank: reduced.count,
                                rowMode: rowMode, count: n, into: out)
            case let .argReduce(minimum, _):
                let p = kernel.programs[0]
                Executor.argReduce(p, p.leaves.map(access), minimum: minimum,
                                   into: storage.baseAddress.assumingMemoryBound(to: Int64.self))
            case let .row(op, axis, weight, bias):
                let p = kernel.programs[0]
                var destStrides = outStrides.indices.filter { $0 != axis }.map { outStrides[$0] }
                destStrides.append(outStrides[axis])
                Executor.row(p, p.leaves.map(access), op: op, weight: weight.map(access), bias: bias.map(access),
                             into: out, strides: destStrides)
            case let .gather(indices, table):
                Executor.gather(indices, table: access(table), tableShape: table.node.shape, coding: table.node.dtype, into: out)
            case let .concat(axis):
                var start = 0
                for p in kernel.programs {
                    Executor.elementwise(p, p.leaves.map(access), into: out + start * outStrides[axis], strides: outStrides)
                    start += p.space[axis]
                }
            case let .pad(widths, value):
                out.initialize(repeating: value, count: node.elementCount)
                var origin = 0
                for axis in node.shape.indices { origin += widths[2 * axis] * outStrides[axis] }
                let p = kernel.programs[0]
                if p.space.reduce(1, *) > 0 {
                    Executor.elementwise(p, p.leaves.map(access), into: out + origin, strides: outStrides)
                }
            case .matmul, .conv2d, .attention, .write:
                break  // done above (a write never gets here)
            case .convert(let from):
                let p = kernel.programs[0]
                Executor.convert(p, p.leaves.map(access), from: from, to: node.dtype, into: storage.baseAddress)
            case let .topK(k, axis, largest):
                let p = kernel.programs[0]
                var destStrides = outStrides.indices.filter { $0 != axis }.map { outStrides[$0] }
                destStrides.append(outStrides[axis])
                Executor.topK(p, p.leaves.map(access), k: k, largest: largest, into: storage.baseAddress.assumingMemoryBound(to: Int64.self),
                              strides: destStrides)
            case let .take(axis, along, table, indices):
                Executor.take(access(table), table.node, indices: access(indices), indices.node, axis: axis, alongAxis: along,
                              outShape: node.shape, into: storage.baseAddress)
            case .pool2d(let input):
                guard case let .pool2d(p) = node.op else { break }
                Executor.pool(access(input), shape: input.node.shape, p, into: out, outShape: node.shape)
            }
        }
        if kernel.isCopy {
            switch kernel.kind {
            case .gather, .take: Stats.recordCopy(bytes: bytes, reason: .gather)
            case .convert(let from) where from != node.dtype: Stats.recordCopy(bytes: bytes, reason: .convert)
            default: Stats.recordCopy(bytes: bytes, reason: copyReason)
            }
        }
        switch kernel.kind {
        case .matmul(let product), .conv2d(let product, _, _, _, _):
            if product !== node { results[ObjectIdentifier(product)] = nil }
        default: break
        }
        finish(kernel, result: Node(.buffer(storage, offset: 0, strides: outStrides), [], shape: node.shape, dtype: node.dtype))
    }

    /// Evaluates the value straight into the target view at the node's current position; the
    /// result is the target view. Nothing is allocated; a value that is only read (not
    /// computed) is counted as copied bytes, reason `.cacheWrite`.
    private mutating func runWrite(_ kernel: Kernel) {
        guard case let .write(storage, offset, strides, axis, position) = kernel.node.op else { return }
        let start = position.value, rows = kernel.programs[0].space[axis]
        // Replay checks a counter's position before it runs anything (and fixed ones are
        // checked when the write is built): this is the last guard of the target's memory.
        precondition(start >= 0 && start + rows <= kernel.node.shape[axis], "write at \(start) of \(rows) rows past \(kernel.node.shape[axis])")
        Stats.recordKernel()
        let p = kernel.programs[0]
        let leaves = p.leaves.map(access)
        let keepAlive = kernel.allLeaves.map { buffer(of: $0.node).0 }
        withExtendedLifetime((storage, keepAlive)) {
            let base = storage.baseAddress.assumingMemoryBound(to: Float.self) + offset + start * strides[axis]
            Executor.elementwise(p, leaves, into: base, strides: strides)
        }
        if kernel.isCopy { Stats.recordCopy(bytes: kernel.writtenBytes, reason: .cacheWrite) }
        let result = Node(.buffer(storage, offset: offset, strides: strides), [], shape: kernel.node.shape)
        // A write happens once: its node keeps the view as its result (it costs no memory), so
        // a later graph that reads it never runs it again.
        kernel.node.setResult(result)
        finish(kernel, result: result)
    }

    /// Records a kernel's result and releases the inputs it was the last reader of.
    ///
    /// An intermediate is released once its readers in this plan have run. If a later graph
    /// reads it again (a lazily grown cache whose only evaluated result is the logits, say),
    /// it is computed again, and then kept in its node: recomputed at most once, and counted
    /// (`Stats.recomputed`, and explain() says so beforehand), never silently every step.
    private mutating func finish(_ kernel: Kernel, result: Node) {
        let id = ObjectIdentifier(kernel.node)
        if !replaying, !roots.contains(id), kernel.node.realized == nil, kernel.node.markComputed() {
            kernel.node.setResult(result)
            Stats.recordRecompute()
        }
        results[id] = result
        for leaf in kernel.allLeaves { consumed(leaf.node) }
    }

    /// One reader of `node` has run; the last one releases its buffer unless it is a root.
    private mutating func consumed(_ node: Node) {
        let id = ObjectIdentifier(node)
        remaining[id, default: 1] -= 1
        if remaining[id] == 0 && !roots.contains(id) { results[id] = nil }
    }

    /// A copy kernel whose source, once its producer has run, turns out to be row-major and
    /// gap-free already (heads merged back from an attention output laid out [B, T, H, d], say)
    /// writes nothing: the result is that buffer. The planner cannot tell beforehand, because
    /// a reshape's strides depend on the layout its producer chose.
    private mutating func aliasIfContiguous(_ kernel: Kernel) -> Bool {
        guard let leaf = Executor.aliasSource(kernel) else { return false }
        let a = access(leaf)
        let node = kernel.node
        guard Executor.aliases(kernel, a) else { return false }
        let storage = buffer(of: leaf.node).0
        results[ObjectIdentifier(node)] = Node(.buffer(storage, offset: a.offset, strides: a.strides), [], shape: node.shape, dtype: node.dtype)
        consumed(leaf.node)
        return true
    }


    /// The one leaf a pure copy kernel reads, if it is one (the only kind that can alias).
    static func aliasSource(_ kernel: Kernel) -> Program.Leaf? {
        guard case .elementwise = kernel.kind, kernel.programs[0].isPureLoad,
              case .load(let l) = kernel.programs[0].instructions[0] else { return nil }
        return kernel.programs[0].leaves[l]
    }

    /// Whether that copy finds its source row-major already, and so writes nothing.
    static func aliases(_ kernel: Kernel, _ source: LeafAccess) -> Bool {
        source.isStrided && kernel.node.elementCount > 0 && Layout.isRowMajor(shape: kernel.node.shape, strides: source.strides)
    }
}
