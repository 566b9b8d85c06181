import CKernels

/// Runs a plan's kernels in order. Each kernel writes one new contiguous buffer; buffers of
/// intermediates are released as soon as their last consumer has run, so peak memory is the
/// live set of the plan, not its sum.
struct Executor {
    private var results: [ObjectIdentifier: Node] = [:]
    private var remaining: [ObjectIdentifier: Int]
    private let roots: Set<ObjectIdentifier>
    private let copyReason: CopyReason

    init(kernels: [Kernel], roots: [Node], copyReason: CopyReason) {
        self.copyReason = copyReason
        remaining = Planner.consumerCounts(kernels)
        self.roots = Set(roots.map { ObjectIdentifier($0) })
    }

    /// Runs every kernel; returns the buffer node of each root.
    static func run(_ kernels: [Kernel], roots: [Node], copyReason: CopyReason = .output) -> [Node] {
        var executor = Executor(kernels: kernels, roots: roots, copyReason: copyReason)
        for kernel in kernels { executor.run(kernel) }
        return roots.map { executor.results[ObjectIdentifier($0)] ?? $0.realized! }
    }

    private func buffer(of node: Node) -> (Storage, Int, [Int]) {
        let n = node.realized ?? results[ObjectIdentifier(node)]!
        guard case let .buffer(storage, offset, strides) = n.op else { preconditionFailure("leaf is not a buffer") }
        return (storage, offset, strides)
    }

    private func access(_ leaf: Program.Leaf) -> LeafAccess {
        let (storage, offset, strides) = buffer(of: leaf.node)
        return LeafAccess(base: UnsafePointer(storage.baseAddress.assumingMemoryBound(to: Float.self)),
                          offset: offset, strides: strides, leafShape: leaf.node.shape, steps: leaf.steps)
    }

    private mutating func run(_ kernel: Kernel) {
        let node = kernel.node
        let bytes = node.elementCount * MemoryLayout<Float>.stride
        let storage = Storage(allocatingByteCount: bytes)
        let out = storage.baseAddress.assumingMemoryBound(to: Float.self)
        let outStrides = Tensor.contiguousStrides(for: node.shape)
        Stats.recordKernel()
        if case .matmul(let product) = kernel.kind {
            runMatmul(kernel, product: product, into: out, storage: storage)
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
                Executor.argReduce(p, p.leaves.map(access), minimum: minimum, into: out)
            case let .row(op, axis, weight, bias):
                let p = kernel.programs[0]
                var destStrides = outStrides.indices.filter { $0 != axis }.map { outStrides[$0] }
                destStrides.append(outStrides[axis])
                Executor.row(p, p.leaves.map(access), op: op, weight: weight.map(access), bias: bias.map(access),
                             into: out, strides: destStrides)
            case let .gather(indices, table):
                Executor.gather(indices, table: access(table), tableShape: table.node.shape, into: out)
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
            case .matmul:
                break  // done above
            }
        }
        if kernel.isCopy { Stats.recordCopy(bytes: bytes, reason: copyReason) }
        if case .matmul(let product) = kernel.kind, product !== node { results[ObjectIdentifier(product)] = nil }
        let result = Node(.buffer(storage, offset: 0, strides: outStrides), [], shape: node.shape)
        results[ObjectIdentifier(node)] = result
        for leaf in kernel.allLeaves {
            let id = ObjectIdentifier(leaf.node)
            remaining[id, default: 1] -= 1
            if remaining[id] == 0 && !roots.contains(id) { results[id] = nil }
        }
    }

    // MARK: matmul

    /// An operand ready for the BLAS: its buffer and strides over [batch..., rows, cols].
    private struct Operand {
        let storage: Storage
        let base: UnsafePointer<Float>
        let strides: [Int]
        let layout: BLAS.Layout
    }

    /// Reads an operand in place when its slices are BLAS-ready, otherwise packs it once into a
    /// contiguous block (a counted copy, reason `.pack`; or, for a computed chain, its values).
    private func operand(_ p: Program) -> Operand {
        let shape = p.space
        let rows = shape[shape.count - 2], cols = shape[shape.count - 1]
        if p.isPureLoad, case .load(let l) = p.instructions[0] {
            let a = access(p.leaves[l])
            if a.isStrided, let layout = BLAS.layout(rows: rows, cols: cols, rowStride: a.strides[shape.count - 2],
                                                     colStride: a.strides[shape.count - 1]) {
                return Operand(storage: buffer(of: p.leaves[l].node).0, base: a.base + a.offset, strides: a.strides, layout: layout)
            }
        }
        // Pack: only the distinct batch slices (broadcast batch axes stay broadcast).
        var packedShape = shape
        let a0 = p.isPureLoad ? access(p.leaves[0]) : nil
        for axis in 0..<(shape.count - 2) where a0?.isStrided == true && a0!.strides[axis] == 0 { packedShape[axis] = 1 }
        let count = packedShape.reduce(1, *)
        let storage = Storage(allocatingByteCount: count * MemoryLayout<Float>.stride)
        let out = storage.baseAddress.assumingMemoryBound(to: Float.self)
        var program = p
        program.space = packedShape
        Executor.elementwise(program, p.leaves.map(access), into: out, strides: Tensor.contiguousStrides(for: packedShape))
        if p.isPureLoad { Stats.recordCopy(bytes: count * MemoryLayout<Float>.stride, reason: .pack) }
        var strides = Tensor.contiguousStrides(for: packedShape)
        for axis in 0..<(shape.count - 2) where packedShape[axis] == 1 { strides[axis] = 0 }
        return Operand(storage: storage, base: UnsafePointer(out), strides: strides,
                       layout: BLAS.Layout(transposed: false, leadingDimension: Swift.max(1, cols)))
    }

    private mutating func runMatmul(_ kernel: Kernel, product: Node, into out: UnsafeMutablePointer<Float>, storage: Storage) {
        let a = operand(kernel.programs[0]), b = operand(kernel.programs[1])
        let shape = product.shape
        let rank = shape.count
        let m = shape[rank - 2], n = shape[rank - 1], k = kernel.programs[0].space[rank - 1]
        let batchShape = Array(shape.dropLast(2))
        let batches = batchShape.reduce(1, *)
        withExtendedLifetime((a.storage, b.storage)) {
            // Weights shared by every batch and activations whose batch and row axes merge:
            // one GEMM with batch·M rows instead of a loop (the Linear-layer case).
            if batches > 1, b.strides.dropLast(2).allSatisfy({ $0 == 0 }), !a.layout.transposed,
               let merged = Layout.reshapedStrides(shape: batchShape + [m], strides: Array(a.strides.dropLast(1)),
                                                   to: [batches * m]) {
                let layout = BLAS.Layout(transposed: false, leadingDimension: Swift.max(merged[0], k, 1))
                if merged[0] >= Swift.max(1, k) || batches * m == 1 {
                    BLAS.gemm(m: batches * m, n: n, k: k, a: a.base, layout, b: b.base, b.layout, c: out, ldc: n)
                    return
                }
            }
            var index = [Int](repeating: 0, count: batchShape.count)
            for batch in 0..<batches {
                unravel(batch, batchShape[...], into: &index, at: 0)
                var pa = 0, pb = 0
                for axis in index.indices { pa += index[axis] * a.strides[axis]; pb += index[axis] * b.strides[axis] }
                BLAS.gemm(m: m, n: n, k: k, a: a.base + pa, a.layout, b: b.base + pb, b.layout, c: out + batch * m * n, ldc: n)
            }
        }
        if kernel.programs.count > 2 {
            // The epilogue reads the product where it lies: in this kernel's output.
            results[ObjectIdentifier(product)] = Node(.buffer(storage, offset: 0, strides: Tensor.contiguousStrides(for: shape)),
                                                      [], shape: shape)
            let p = kernel.programs[2]
            Executor.elementwise(p, p.leaves.map(access), into: out, strides: Tensor.contiguousStrides(for: shape))
        }
    }

    // MARK: drivers

    /// Writes the program's values over its space into `dest` with `strides`.
    static func elementwise(_ p: Program, _ leaves: [LeafAccess], into dest: UnsafeMutablePointer<Float>, strides: [Int]) {
        let total = p.space.reduce(1, *)
        guard total > 0 else { return }
        var space = p.space
        var leaves = leaves
        var destStrides = strides
        if leaves.allSatisfy(\.isStrided) {
            let (s, st) = coalesce(shape: space, strides: leaves.map(\.strides) + [destStrides])
            space = s
            for i in leaves.indices { leaves[i].strides = st[i] }
            destStrides = st[leaves.count]
        }
        let rank = space.count
        let inner = rank == 0 ? 1 : space[rank - 1]
        let perRow = (inner + Evaluator.block - 1) / Evaluator.block
        let rows = rank <= 1 ? 1 : space[0..<(rank - 1)].reduce(1, *)
        let shared = Unchecked((p, leaves, dest, destStrides, space))
        Parallel.forEach(items: rows * perRow, work: total) { range in
            let (p, leaves, dest, destStrides, space) = shared.value
            var evaluator = Evaluator(program: p, leaves: leaves)
            defer { evaluator.deallocate() }
            var index = [Int](repeating: 0, count: rank)
            for item in range {
                let row = item / perRow, chunk = item % perRow
                if rank > 1 { unravel(row, space[0..<(rank - 1)], into: &index, at: 0) }
                if rank > 0 { index[rank - 1] = chunk * Evaluator.block }
                let count = Swift.min(Evaluator.block, inner - chunk * Evaluator.block)
                let (value, stride) = evaluator.run(at: index, count: count)
                var position = 0
                for a in 0..<rank { position += index[a] * destStrides[a] }
                wk_scatter(value, stride, dest + position, rank == 0 ? 1 : destStrides[rank - 1], count)
            }
        }
    }

    /// Program space: kept ++ reduced (row mode) or reduced ++ kept (column mode); the output
    /// is contiguous over the kept axes.
    static func reduce(_ p: Program, _ leaves: [LeafAccess], op: ReduceOp, keptRank: Int, reducedRank: Int,
                       rowMode: Bool, count: Int, into dest: UnsafeMutablePointer<Float>) {
        let space = p.space
        let scale: Float = op == .mean ? 1 / Float(Swift.max(count, 1)) : 1
        let shared = Unchecked((p, leaves, dest))
        if rowMode {
            let keptShape = space[0..<keptRank], reducedShape = space[keptRank...]
            let outputs = keptShape.reduce(1, *)
            let inner = reducedShape.last ?? 1
            let reducedRows = reducedShape.dropLast().reduce(1, *)
            Parallel.forEach(items: outputs, work: outputs * count) { range in
                let (p, leaves, dest) = shared.value
                var evaluator = Evaluator(program: p, leaves: leaves)
                defer { evaluator.deallocate() }
                var index = [Int](repeating: 0, count: space.count)
                for k in range {
                    unravel(k, keptShape, into: &index, at: 0)
                    var acc = op.identity
                    if count > 0 {
                        for r in 0..<reducedRows {
                            unravel(r, reducedShape.dropLast(), into: &index, at: keptRank)
                            var start = 0
                            while start < inner {
                                if !space.isEmpty { index[space.count - 1] = start }
                                let n = Swift.min(Evaluator.block, inner - start)
                                let (v, s) = evaluator.run(at: index, count: n)
                                let part = s == 0 ? (op == .sum || op == .mean ? v.pointee * Float(n) : v.pointee)
                                    : wk_reduce(op.code, v, n)
                                acc = combine(op, acc, part)
                                start += n
                            }
                        }
                    }
                    dest[k] = acc * scale
                }
            }
        } else {
            let reducedShape = space[0..<reducedRank], keptShape = space[reducedRank...]
            let inner = keptShape.last ?? 1
            let keptRows = keptShape.dropLast().reduce(1, *)
            let perRow = (inner + Evaluator.block - 1) / Evaluator.block
            let reducedCount = reducedShape.reduce(1, *)
            Parallel.forEach(items: keptRows * perRow, work: keptRows * inner * Swift.max(reducedCount, 1)) { range in
                let (p, leaves, dest) = shared.value
                var evaluator = Evaluator(program: p, leaves: leaves)
                defer { evaluator.deallocate() }
                let acc = UnsafeMutablePointer<Float>.allocate(capacity: Evaluator.block)
                defer { acc.deallocate() }
                var index = [Int](repeating: 0, count: space.count)
                for item in range {
                    let row = item / perRow, chunk = item % perRow
                    let n = Swift.min(Evaluator.block, inner - chunk * Evaluator.block)
                    acc.initialize(repeating: op.identity, count: n)
                    unravel(row, keptShape.dropLast(), into: &index, at: reducedRank)
                    index[space.count - 1] = chunk * Evaluator.block
                    for r in 0..<reducedCount {
                        unravel(r, reducedShape, into: &index, at: 0)
                        let (v, s) = evaluator.run(at: index, count: n)
                        wk_accumulate(op.code, acc, v, s, n)
                    }
                    let out = dest + row * inner + chunk * Evaluator.block
                    for i in 0..<n { out[i] = acc[i] * scale }
                }
            }
        }
    }

    @inline(__always)
    static func combine(_ op: ReduceOp, _ a: Float, _ b: Float) -> Float {
        switch op {
        case .sum, .mean: a + b
        case .max: (b > a || b.isNaN || a.isNaN) ? (a.isNaN ? a : b) : a
        case .min: (b < a || b.isNaN || a.isNaN) ? (a.isNaN ? a : b) : a
        }
    }

    /// Program space: the input with the reduced axis last.
    static func argReduce(_ p: Program, _ leaves: [LeafAccess], minimum: Bool, into dest: UnsafeMutablePointer<Float>) {
        let space = p.space
        let inner = space.last!
        let outputs = space.dropLast().reduce(1, *)
        let shared = Unchecked((p, leaves, dest))
        Parallel.forEach(items: outputs, work: outputs * inner) { range in
            let (p, leaves, dest) = shared.value
            var evaluator = Evaluator(program: p, leaves: leaves)
            defer { evaluator.deallocate() }
            var index = [Int](repeating: 0, count: space.count)
            for k in range {
                unravel(k, space.dropLast(), into: &index, at: 0)
                var best = 0, bestValue: Float = 0, start = 0
                while start < inner {
                    index[space.count - 1] = start
                    let n = Swift.min(Evaluator.block, inner - start)
                    let (v, s) = evaluator.run(at: index, count: n)
                    var value: Float = 0
                    let i = s == 0 ? 0 : wk_argext(v, n, minimum ? 1 : 0, &value)
                    if s == 0 { value = v.pointee }
                    if start == 0 || (!bestValue.isNaN && (value.isNaN || (minimum ? value < bestValue : value > bestValue))) {
                        best = start + i; bestValue = value
                    }
                    start += n
                }
                dest[k] = Float(best)
            }
        }
    }

    /// Program space: the input with the row axis last; `strides` are the output's in that order.
    static func row(_ p: Program, _ leaves: [LeafAccess], op: RowOp, weight: LeafAccess?, bias: LeafAccess?,
                    into dest: UnsafeMutablePointer<Float>, strides: [Int]) {
        let space = p.space
        let length = space.last!
        let outer = space.dropLast().reduce(1, *)
        guard length > 0, outer > 0 else { return }
        // Parameters with an unusual stride are gathered once into a contiguous vector.
        func vector(_ leaf: LeafAccess?) -> (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int) {
            guard let leaf else { return (nil, nil, 0) }
            let s = leaf.strides.first ?? 0
            if leaf.isStrided && (s == 0 || s == 1) { return (nil, leaf.base + leaf.offset, s) }
            let copy = UnsafeMutablePointer<Float>.allocate(capacity: length)
            for i in 0..<length { copy[i] = leaf.base[leaf.elementOffset(of: [i])] }
            return (copy, UnsafePointer(copy), 1)
        }
        let (wOwned, w, sw) = vector(weight), (bOwned, b, sb) = vector(bias)
        defer { wOwned?.deallocate(); bOwned?.deallocate() }
        let shared = Unchecked((p, leaves, dest, w, b))
        Parallel.forEach(items: outer, work: outer * length) { range in
            let (p, leaves, dest, w, b) = shared.value
            var evaluator = Evaluator(program: p, leaves: leaves)
            defer { evaluator.deallocate() }
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: length)
            defer { buffer.deallocate() }
            var index = [Int](repeating: 0, count: space.count)
            for o in range {
                unravel(o, space.dropLast(), into: &index, at: 0)
                var start = 0
                while start < length {
                    index[space.count - 1] = start
                    let n = Swift.min(Evaluator.block, length - start)
                    let (v, s) = evaluator.run(at: index, count: n)
                    wk_scatter(v, s, buffer + start, 1, n)
                    start += n
                }
                switch op {
                case .softmax: wk_softmax_row(buffer, buffer, length, 0)
                case .logSoftmax: wk_softmax_row(buffer, buffer, length, 1)
                case .layerNorm(let eps): wk_norm_row(buffer, buffer, length, w, sw, b, sb, eps, 0)
                case .rmsNorm(let eps): wk_norm_row(buffer, buffer, length, w, sw, nil, 0, eps, 1)
                }
                var position = 0
                for a in 0..<(space.count - 1) { position += index[a] * strides[a] }
                wk_scatter(buffer, 1, dest + position, strides[space.count - 1], length)
            }
        }
    }

    static func gather(_ indices: [Int], table: LeafAccess, tableShape: [Int], into dest: UnsafeMutablePointer<Float>) {
        let rest = Array(tableShape.dropFirst())
        let rowLength = rest.reduce(1, *)
        let restStrides = Array(table.strides.dropFirst())
        let dense = table.isStrided && Layout.isRowMajor(shape: rest, strides: restStrides)
        let shared = Unchecked((table, dest))
        Parallel.forEach(items: indices.count, work: indices.count * rowLength) { range in
            let (table, dest) = shared.value
            for i in range {
                let out = dest + i * rowLength
                if dense {
                    out.update(from: table.base + table.offset + indices[i] * table.strides[0], count: rowLength)
                } else {
                    var k = 0
                    var restIndex = [Int](repeating: 0, count: rest.count)
                    for e in 0..<rowLength {
                        unravel(e, rest[...], into: &restIndex, at: 0)
                        out[k] = table.base[table.elementOffset(of: [indices[i]] + restIndex)]
                        k += 1
                    }
                }
            }
        }
    }
}
