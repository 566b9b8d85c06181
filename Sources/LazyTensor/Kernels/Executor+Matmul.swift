import CKernels

/// Matrix products: operands read in place or packed once, GEMM epilogues, the few-rows path.
extension Executor {
    // MARK: matmul

    enum OperandPacking {
        case inPlace(GEMM.Layout)
        /// Packed into a contiguous block of this shape (broadcast batch axes kept at 1).
        case packed([Int])
    }

    /// Whether an operand is read in place (its slices BLAS-ready or, with `forBLAS` false,
    /// strided at all) or packed once, and to what shape. The plan's cost accounting asks the
    /// same question with the layouts the plan will produce.
    static func operandPacking(_ p: Program, _ leaves: [LeafAccess], forBLAS: Bool) -> OperandPacking {
        let shape = p.space
        let rows = shape[shape.count - 2], cols = shape[shape.count - 1]
        if p.isPureLoad, case .load(let l) = p.instructions[0] {
            let a = leaves[l]
            if a.isStrided, let layout = forBLAS
                ? GEMM.layout(rows: rows, cols: cols, rowStride: a.strides[shape.count - 2], colStride: a.strides[shape.count - 1])
                : GEMM.Layout(transposed: false, leadingDimension: 0) {
                return .inPlace(layout)
            }
        }
        // Only the distinct batch slices are packed (broadcast batch axes stay broadcast).
        var packedShape = shape
        let a0 = p.isPureLoad ? leaves[0] : nil
        for axis in 0..<(shape.count - 2) where a0?.isStrided == true && a0!.strides[axis] == 0 { packedShape[axis] = 1 }
        return .packed(packedShape)
    }

    /// An operand ready for the GEMM: its buffer and strides over [batch..., rows, cols].
    struct Operand {
        let storage: Storage
        let base: UnsafePointer<Float>
        let strides: [Int]
        let layout: GEMM.Layout
        /// A coded weight read as stored (then `base` is not read: its rows are here).
        var coded: GEMM.CodedWeight? = nil

        /// The coded weight of one batch slice (strides count the weight's elements).
        func coded(atElement offset: Int) -> GEMM.CodedWeight? {
            coded.map { $0.advanced(byElements: offset) }
        }
    }

    /// Reads an operand in place when its slices are BLAS-ready (or, with `forBLAS` false, when
    /// it is strided at all), otherwise packs it once into a contiguous block (a counted copy,
    /// reason `.pack`; or, for a computed chain, its values).
    func operand(_ p: Program, forBLAS: Bool = true) -> Operand {
        let shape = p.space
        let cols = shape[shape.count - 1]
        let leaves = p.leaves.map(access)
        if p.isPureLoad, case .load(let l) = p.instructions[0], p.leaves[l].node.dtype.isCodedWeight {
            // Node.isCodedWeightOperand admitted it: W [N, K] seen as Wᵀ, rows whole.
            let a = leaves[l], rank = shape.count, dtype = p.leaves[l].node.dtype
            let storage = buffer(of: p.leaves[l].node).0
            let ldw = a.strides[rank - 1]
            let coded = GEMM.CodedWeight(dtype: dtype, base: UnsafeRawPointer(storage.baseAddress),
                                         element: a.offset, rowStride: ldw)
            return Operand(storage: storage, base: a.base, strides: a.strides,
                           layout: GEMM.Layout(transposed: true, leadingDimension: Swift.max(ldw, 1)), coded: coded)
        }
        let decision = Executor.operandPacking(p, leaves, forBLAS: forBLAS)
        if case let .inPlace(layout) = decision, case .load(let l) = p.instructions[0] {
            let a = leaves[l]
            return Operand(storage: buffer(of: p.leaves[l].node).0, base: a.base + a.offset, strides: a.strides, layout: layout)
        }
        guard case let .packed(packedShape) = decision else { preconditionFailure() }
        let count = packedShape.reduce(1, *)
        let storage = Storage(allocatingByteCount: count * MemoryLayout<Float>.stride)
        let out = storage.baseAddress.assumingMemoryBound(to: Float.self)
        var program = p
        program.space = packedShape
        Executor.elementwise(program, leaves, into: out, strides: Tensor.contiguousStrides(for: packedShape))
        if p.isPureLoad { Stats.recordCopy(bytes: count * MemoryLayout<Float>.stride, reason: .pack) }
        var strides = Tensor.contiguousStrides(for: packedShape)
        for axis in 0..<(shape.count - 2) where packedShape[axis] == 1 { strides[axis] = 0 }
        return Operand(storage: storage, base: UnsafePointer(out), strides: strides,
                       layout: GEMM.Layout(transposed: false, leadingDimension: Swift.max(1, cols)))
    }


    mutating func runMatmul(_ kernel: Kernel, product: Node, into out: UnsafeMutablePointer<Float>, storage: Storage) {
        let a = operand(kernel.programs[0]), b = operand(kernel.programs[1])
        let shape = product.shape
        let rank = shape.count
        let m = shape[rank - 2], n = shape[rank - 1], k = kernel.programs[0].space[rank - 1]
        // An epilogue that adds something to the product (a bias, a residual) writes that
        // addend first and the GEMM accumulates onto it (β = 1): one pass over the output
        // instead of the GEMM zeroing it and the epilogue reading it back.
        var epilogue = kernel.programs.count > 2 ? kernel.programs[2] : nil
        let split = epilogue.flatMap { Executor.splitAddend($0, product: product) }
        if let (_, rest) = split { epilogue = rest }
        let accumulate = split != nil
        let batchShape = Array(shape.dropLast(2))
        let batches = batchShape.reduce(1, *)
        let outStrides = Tensor.contiguousStrides(for: shape)
        if kernel.programs.count > 2 {
            // The epilogue reads the product where it lies: in this kernel's output.
            results[ObjectIdentifier(product)] = Node(.buffer(storage, offset: 0, strides: outStrides), [], shape: shape)
        }
        let addend = split.map { ($0.0, $0.0.leaves.map(access)) }
        let after = epilogue.map { ($0, $0.leaves.map(access)) }
        if addend != nil || after != nil,
           runFewRowsWithColumnEpilogue(a: a, b: b, m: m, n: n, k: k, batchShape: batchShape, into: out, strides: outStrides,
                                        addend: addend, epilogue: after) {
            return
        }
        if runPackedWithTileEpilogue(a: a, b: b, m: m, n: n, k: k, batchShape: batchShape, into: out,
                                     addend: addend, epilogue: after) {
            return
        }
        if let (p, leaves) = addend { Executor.elementwise(p, leaves, into: out, strides: outStrides) }
        // Many small products run whole, one per worker at a time; otherwise each is split.
        let spread = batches >= Parallel.workers * 2 && m * n * k <= 1 << 21 && Parallel.workers > 1
        withExtendedLifetime((a.storage, b.storage)) {
            // Weights shared by every batch and activations whose batch and row axes merge:
            // one GEMM with batch·M rows instead of a loop (the Linear-layer case).
            if batches > 1, let lda = Executor.mergedRowStride(a, b, batchShape: batchShape, m: m, k: k) {
                let layout = GEMM.Layout(transposed: false, leadingDimension: lda)
                GEMM.gemm(m: batches * m, n: n, k: k, a: a.base, layout, b: b.base, b.layout, c: out, ldc: n,
                          accumulate: accumulate, coded: b.coded)
                return
            }
            let shared = Unchecked((a.base, b.base, out, b))
            let (aStrides, bStrides, la, lb) = (a.strides, b.strides, a.layout, b.layout)
            let products = { @Sendable (range: Range<Int>) in
                let (aBase, bBase, out, b) = shared.value
                var index = [Int](repeating: 0, count: batchShape.count)
                for batch in range {
                    unravel(batch, batchShape[...], into: &index, at: 0)
                    var pa = 0, pb = 0
                    for axis in index.indices { pa += index[axis] * aStrides[axis]; pb += index[axis] * bStrides[axis] }
                    GEMM.gemm(m: m, n: n, k: k, a: aBase + pa, la, b: b.coded == nil ? bBase + pb : bBase, lb,
                              c: out + batch * m * n, ldc: n, split: !spread, accumulate: accumulate, coded: b.coded(atElement: pb))
                }
            }
            if spread {
                Parallel.forEach(items: batches, work: Int.max, products)
            } else {
                products(0..<batches)
            }
        }
        if let (p, leaves) = after { Executor.elementwise(p, leaves, into: out, strides: outStrides) }
    }

    /// The leading dimension of A read as one [batches·M, K] matrix, when the weight is shared by
    /// every batch and A's batch and row axes merge into one stride (a Linear layer over
    /// [B, T, K]): then the whole product is one GEMM. nil otherwise.
    static func mergedRowStride(_ a: Operand, _ b: Operand, batchShape: [Int], m: Int, k: Int) -> Int? {
        guard b.strides.dropLast(2).allSatisfy({ $0 == 0 }), !a.layout.transposed,
              let merged = Layout.reshapedStrides(shape: batchShape + [m], strides: Array(a.strides.dropLast(1)),
                                                  to: [batchShape.reduce(1, *) * m]),
              merged[0] >= Swift.max(1, k) else { return nil }
        return merged[0]
    }

    /// A linear layer over a few rows (one GEMM read by wk_gemm_nt, weight in place) whose
    /// addend and epilogue read only strided inputs: each worker writes the addend under its
    /// own columns, accumulates its product onto it and applies the epilogue to them, while
    /// they are in its cache. At MiniLM's 1 x 16 the bias, residual and GELU passes otherwise
    /// ran on the calling thread alone, the other core waiting. false when it does not apply.
    func runFewRowsWithColumnEpilogue(a: Operand, b: Operand, m: Int, n: Int, k: Int, batchShape: [Int],
                                              into out: UnsafeMutablePointer<Float>, strides: [Int],
                                              addend: (Program, [LeafAccess])?, epilogue: (Program, [LeafAccess])?) -> Bool {
        guard (addend?.1 ?? []).allSatisfy(\.isStrided), (epilogue?.1 ?? []).allSatisfy(\.isStrided),
              let lda = Executor.mergedRowStride(a, b, batchShape: batchShape, m: m, k: k) else { return false }
        let rows = batchShape.reduce(1, *) * m
        guard GEMM.readsWeightInPlace(m: rows, n: n, k: k, a.layout, b.layout) else { return false }
        let shared = Unchecked((out, strides, addend, epilogue))
        @Sendable func restricted(_ job: (Program, [LeafAccess]), _ columns: Range<Int>) {
            let (out, strides, _, _) = shared.value
            var (p, leaves) = job
            let last = p.space.count - 1
            p.space[last] = columns.count
            for i in leaves.indices { leaves[i].offset += columns.lowerBound * leaves[i].strides[last] }
            Executor.elementwise(p, leaves, into: out + columns.lowerBound, strides: strides)
        }
        withExtendedLifetime((a.storage, b.storage)) {
            GEMM.fewRowsTimesWeight(m: rows, n: n, k: k, a: a.base, lda: lda, w: b.base, ldw: b.layout.leadingDimension,
                                    c: out, ldc: n, accumulate: addend != nil, coded: b.coded,
                                    prologue: { columns in if let job = shared.value.2 { restricted(job, columns) } },
                                    epilogue: { columns in if let job = shared.value.3 { restricted(job, columns) } })
        }
        return true
    }

    /// One packed GEMM (a 2-D product, or a Linear layer's batch and rows merged) whose addend
    /// and epilogue read only strided inputs: each tile of the output gets its addend written
    /// under it, its products accumulated onto that, and the epilogue applied, on the worker
    /// that computes it and while it is in that core's cache. A separate pass over a
    /// [4096, 1536] output reads and writes 24 MiB from memory twice. false when it does not
    /// apply (the caller then runs addend and epilogue over the whole output).
    func runPackedWithTileEpilogue(a: Operand, b: Operand, m: Int, n: Int, k: Int, batchShape: [Int],
                                   into out: UnsafeMutablePointer<Float>,
                                   addend: (Program, [LeafAccess])?, epilogue: (Program, [LeafAccess])?) -> Bool {
        guard addend != nil || epilogue != nil else { return false }
        let batches = batchShape.reduce(1, *)
        let lda: Int
        if batches == 1 {
            guard !a.layout.transposed else { return false }
            lda = a.layout.leadingDimension
        } else {
            guard let merged = Executor.mergedRowStride(a, b, batchShape: batchShape, m: m, k: k) else { return false }
            lda = merged
        }
        let rows = batches * m
        let la = GEMM.Layout(transposed: false, leadingDimension: lda)
        guard GEMM.isPacked(m: rows, n: n, k: k, la, b.layout) else { return false }
        // The jobs as [rows, n] programs, so a tile is a rectangle of them.
        func flattened(_ job: (Program, [LeafAccess])?) -> (Program, [LeafAccess])?? {
            guard var (p, leaves) = job else { return .some(nil) }
            let rank = p.space.count
            for i in leaves.indices {
                guard leaves[i].isStrided, let merged = Layout.reshapedStrides(
                    shape: Array(p.space.dropLast()), strides: Array(leaves[i].strides.dropLast()), to: [rows]) else { return nil }
                leaves[i].strides = [merged[0], leaves[i].strides[rank - 1]]
            }
            p.space = [rows, n]
            return .some((p, leaves))
        }
        guard let before = flattened(addend), let after = flattened(epilogue) else { return false }
        let destination = Unchecked(out)
        func tileBody(_ job: (Program, [LeafAccess])?) -> GEMM.TileBody? {
            guard let job else { return nil }
            let shared = Unchecked(job)
            return { tileRows, columns in
                var (p, leaves) = shared.value
                p.space = [tileRows.count, columns.count]
                for i in leaves.indices {
                    leaves[i].offset += tileRows.lowerBound * leaves[i].strides[0] + columns.lowerBound * leaves[i].strides[1]
                }
                Executor.elementwise(p, leaves, into: destination.value + tileRows.lowerBound * n + columns.lowerBound,
                                     strides: [n, 1])
            }
        }
        let workers = rows * n * k >= GEMM.splitThreshold ? Parallel.workers : 1
        let (beforeTile, afterTile) = (tileBody(before), tileBody(after))
        withExtendedLifetime((a.storage, b.storage)) {
            GEMM.packedProduct(m: rows, n: n, k: k, a: a.base, la, b: b.base, b.layout, c: out, ldc: n, accumulate: false,
                               workers: workers, coded: b.coded, before: beforeTile, after: afterTile)
        }
        return true
    }

    /// When `epilogue` is f(product + addend) with the product read once, and nowhere but in
    /// that sum, returns the addend's own program and f over the product (nil when f is the
    /// identity). The addend must not read the product: it is written before the GEMM runs.
    static func splitAddend(_ epilogue: Program, product: Node) -> (Program, Program?)? {
        let loads = epilogue.instructions.indices.filter {
            if case .load(let l) = epilogue.instructions[$0] { epilogue.leaves[l].node === product } else { false }
        }
        guard loads.count == 1, let load = loads.first else { return nil }
        let users = epilogue.users(of: load)
        guard users.count == 1, let sum = users.first, case let .binary(.add, a, b) = epilogue.instructions[sum] else { return nil }
        let addend = epilogue.extracting(a == load ? b : a)
        guard !addend.leaves.contains(where: { $0.node === product }) else { return nil }
        if sum == epilogue.result { return (addend, nil) }
        var rest = epilogue
        rest.instructions[sum] = epilogue.instructions[load]
        return (addend, rest.extracting(rest.result))
    }

}
