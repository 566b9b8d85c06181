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
        for kernel in kernels { Profile.time(kernel.name, shape: kernel.node.shape) { executor.run(kernel) } }
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
                          offset: offset, strides: strides, steps: leaf.steps)
    }

    private mutating func run(_ kernel: Kernel) {
        let node = kernel.node
        if aliasIfContiguous(kernel) { return }
        let bytes = node.elementCount * MemoryLayout<Float>.stride
        let storage = Storage(allocatingByteCount: bytes)
        let out = storage.baseAddress.assumingMemoryBound(to: Float.self)
        let outStrides = Tensor.contiguousStrides(for: node.shape)
        Stats.recordKernel()
        if case .matmul(let product) = kernel.kind {
            runMatmul(kernel, product: product, into: out, storage: storage)
        }
        if case let .attention(scale, hasMask, segments) = kernel.kind {
            runAttention(kernel, scale: scale, hasMask: hasMask, segments: segments, into: out)
        }
        if case let .conv2d(product, x, w, bias) = kernel.kind {
            runConv(kernel, product: product, x: x, w: w, bias: bias, into: out, storage: storage)
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
            case .matmul, .conv2d, .attention:
                break  // done above
            case .pool2d(let input):
                guard case let .pool2d(p) = node.op else { break }
                Executor.pool(access(input), shape: input.node.shape, p, into: out, outShape: node.shape)
            }
        }
        if kernel.isCopy {
            if case .gather = kernel.kind { Stats.recordCopy(bytes: bytes, reason: .gather) } else {
                Stats.recordCopy(bytes: bytes, reason: copyReason)
            }
        }
        switch kernel.kind {
        case .matmul(let product), .conv2d(let product, _, _, _):
            if product !== node { results[ObjectIdentifier(product)] = nil }
        default: break
        }
        let result = Node(.buffer(storage, offset: 0, strides: outStrides), [], shape: node.shape)
        results[ObjectIdentifier(node)] = result
        for leaf in kernel.allLeaves {
            let id = ObjectIdentifier(leaf.node)
            remaining[id, default: 1] -= 1
            if remaining[id] == 0 && !roots.contains(id) { results[id] = nil }
        }
    }

    /// A copy kernel whose source, once its producer has run, turns out to be row-major and
    /// gap-free already (heads merged back from an attention output laid out [B, T, H, d], say)
    /// writes nothing: the result is that buffer. The planner cannot tell beforehand, because
    /// a reshape's strides depend on the layout its producer chose.
    private mutating func aliasIfContiguous(_ kernel: Kernel) -> Bool {
        guard case .elementwise = kernel.kind, kernel.programs[0].isPureLoad,
              case .load(let l) = kernel.programs[0].instructions[0] else { return false }
        let leaf = kernel.programs[0].leaves[l]
        let a = access(leaf)
        let node = kernel.node
        guard a.isStrided, node.elementCount > 0, Layout.isRowMajor(shape: node.shape, strides: a.strides) else { return false }
        let storage = buffer(of: leaf.node).0
        results[ObjectIdentifier(node)] = Node(.buffer(storage, offset: a.offset, strides: a.strides), [], shape: node.shape)
        let id = ObjectIdentifier(leaf.node)
        remaining[id, default: 1] -= 1
        if remaining[id] == 0 && !roots.contains(id) { results[id] = nil }
        return true
    }

    // MARK: matmul

    /// An operand ready for the BLAS: its buffer and strides over [batch..., rows, cols].
    private struct Operand {
        let storage: Storage
        let base: UnsafePointer<Float>
        let strides: [Int]
        let layout: BLAS.Layout
    }

    /// Reads an operand in place when its slices are BLAS-ready (or, with `forBLAS` false, when
    /// it is strided at all), otherwise packs it once into a contiguous block (a counted copy,
    /// reason `.pack`; or, for a computed chain, its values).
    private func operand(_ p: Program, forBLAS: Bool = true) -> Operand {
        let shape = p.space
        let rows = shape[shape.count - 2], cols = shape[shape.count - 1]
        if p.isPureLoad, case .load(let l) = p.instructions[0] {
            let a = access(p.leaves[l])
            if a.isStrided, let layout = forBLAS
                ? BLAS.layout(rows: rows, cols: cols, rowStride: a.strides[shape.count - 2], colStride: a.strides[shape.count - 1])
                : BLAS.Layout(transposed: false, leadingDimension: 0) {
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

    // MARK: attention

    /// Up to this many queries and keys, a head's attention runs in wk_attention_head.
    static let directAttentionLength = 64

    /// softmax(q·kᵀ·scale + mask)·v for each (sequence, head) pair, with the scores of one pair
    /// in a worker's scratch (128 x 128 floats for MiniLM: L2-resident) instead of three kernels
    /// that each write and read [B, H, T, S] through memory. The output rows go straight to
    /// [B, T, H, dv], so merging the heads afterwards is a view. A sequence is one batch entry,
    /// or, with `segments`, one of the sequences packed along T (each attends to its own keys
    /// only, and reads the mask from its corner).
    private func runAttention(_ kernel: Kernel, scale: Float, hasMask: Bool, segments: [Int]?, into out: UnsafeMutablePointer<Float>) {
        let q = operand(kernel.programs[0]), k = operand(kernel.programs[1]), v = operand(kernel.programs[2])
        let mask = hasMask ? operand(kernel.programs[3], forBLAS: false) : nil
        let qs = kernel.programs[0].space, ks = kernel.programs[1].space, vs = kernel.programs[2].space
        let (batch, heads, t, d) = (qs[0], qs[1], qs[2], qs[3])
        let (s, dv) = (ks[2], vs[3])
        guard batch * heads * t > 0, dv > 0 else { return }
        // Each sequence: its batch entry, its first query and key row, its query and key counts.
        var sequences: [(b: Int, row: Int, t: Int, s: Int)] = []
        if let segments {
            var start = 0
            for n in segments { sequences.append((0, start, n, n)); start += n }
        } else {
            sequences = (0..<batch).map { ($0, 0, t, s) }
        }
        let longestT = sequences.map(\.t).max() ?? 0, longestS = sequences.map(\.s).max() ?? 0
        // kᵀ as the right operand: the same storage, the transpose flag flipped.
        let kT = BLAS.Layout(transposed: !k.layout.transposed, leadingDimension: k.layout.leadingDimension)
        // Short sequences with rows of unit stride (heads split from a linear layer's output)
        // run in one C pass per head (see attention.c: 24 -> 17 us a MiniLM layer at 16 tokens).
        let unitRows = !q.layout.transposed && !k.layout.transposed && !v.layout.transposed
        let shared = Unchecked((q, k, v, mask, out, sequences))
        let work = sequences.reduce(0) { $0 + $1.t * $1.s } * heads * (d + dv)
        withExtendedLifetime((q.storage, k.storage, v.storage, mask?.storage)) {
            Parallel.forEach(items: sequences.count * heads, work: work) { range in
                let (q, k, v, mask, out, sequences) = shared.value
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, longestT * longestS))
                let maskRow = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, longestS))
                defer { scores.deallocate(); maskRow.deallocate() }
                var factor = scale
                for pair in range {
                    let (sequence, h) = (sequences[pair / heads], pair % heads)
                    let (b, t, s) = (sequence.b, sequence.t, sequence.s)
                    let qBase = q.base + b * q.strides[0] + h * q.strides[1] + sequence.row * q.strides[2]
                    let kBase = k.base + b * k.strides[0] + h * k.strides[1] + sequence.row * k.strides[2]
                    let vBase = v.base + b * v.strides[0] + h * v.strides[1] + sequence.row * v.strides[2]
                    let maskBase = mask.map { $0.base + b * $0.strides[0] + h * $0.strides[1] }
                    let o = out + ((b * qs[2] + sequence.row) * heads + h) * dv
                    if unitRows && s <= Executor.directAttentionLength && t <= Executor.directAttentionLength {
                        wk_attention_head(t, s, d, dv, qBase, q.layout.leadingDimension, kBase, k.layout.leadingDimension,
                                          vBase, v.layout.leadingDimension, maskBase, mask?.strides[2] ?? 0, mask?.strides[3] ?? 0,
                                          scale, scores, o, heads * dv)
                        continue
                    }
                    if s > 0 && d > 0 {
                        BLAS.gemm(m: t, n: s, k: d, a: qBase, q.layout, b: kBase, kT, c: scores, ldc: s, split: false)
                    } else {
                        scores.initialize(repeating: 0, count: t * s)
                    }
                    for row in 0..<t {
                        let r = scores + row * s
                        wk_binary(Int32(WK_MUL.rawValue), r, 1, &factor, 0, r, s)
                        if let mask, let maskBase {
                            let m = maskBase + row * mask.strides[2]
                            let step = mask.strides[3]
                            if step == 0 || step == 1 {
                                wk_binary(Int32(WK_ADD.rawValue), r, 1, m, step, r, s)
                            } else {
                                wk_gather(m, step, maskRow, s)
                                wk_binary(Int32(WK_ADD.rawValue), r, 1, maskRow, 1, r, s)
                            }
                        }
                        wk_softmax_row(r, r, s, 0)
                    }
                    if s > 0 {
                        BLAS.gemm(m: t, n: dv, k: s, a: scores, BLAS.Layout(transposed: false, leadingDimension: s), b: vBase, v.layout,
                                  c: o, ldc: heads * dv, split: false)
                    } else {
                        for row in 0..<t { (o + row * heads * dv).initialize(repeating: 0, count: dv) }
                    }
                }
            }
        }
    }

    private mutating func runMatmul(_ kernel: Kernel, product: Node, into out: UnsafeMutablePointer<Float>, storage: Storage) {
        let a = operand(kernel.programs[0]), b = operand(kernel.programs[1])
        let shape = product.shape
        let rank = shape.count
        let m = shape[rank - 2], n = shape[rank - 1], k = kernel.programs[0].space[rank - 1]
        // An epilogue that adds something to the product (a bias, a residual) writes that
        // addend first and the GEMM accumulates onto it (β = 1): one pass over the output
        // instead of the BLAS zeroing it and the epilogue reading it back.
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
        if let (p, leaves) = addend { Executor.elementwise(p, leaves, into: out, strides: outStrides) }
        // Many small products run whole, one per worker at a time; otherwise each is split.
        let spread = batches >= Parallel.workers * 2 && m * n * k <= 1 << 21 && Parallel.workers > 1
        withExtendedLifetime((a.storage, b.storage)) {
            // Weights shared by every batch and activations whose batch and row axes merge:
            // one GEMM with batch·M rows instead of a loop (the Linear-layer case).
            if batches > 1, let lda = Executor.mergedRowStride(a, b, batchShape: batchShape, m: m, k: k) {
                let layout = BLAS.Layout(transposed: false, leadingDimension: lda)
                BLAS.gemm(m: batches * m, n: n, k: k, a: a.base, layout, b: b.base, b.layout, c: out, ldc: n,
                          accumulate: accumulate)
                return
            }
            let shared = Unchecked((a.base, b.base, out))
            let (aStrides, bStrides, la, lb) = (a.strides, b.strides, a.layout, b.layout)
            let products = { @Sendable (range: Range<Int>) in
                let (aBase, bBase, out) = shared.value
                var index = [Int](repeating: 0, count: batchShape.count)
                for batch in range {
                    unravel(batch, batchShape[...], into: &index, at: 0)
                    var pa = 0, pb = 0
                    for axis in index.indices { pa += index[axis] * aStrides[axis]; pb += index[axis] * bStrides[axis] }
                    BLAS.gemm(m: m, n: n, k: k, a: aBase + pa, la, b: bBase + pb, lb, c: out + batch * m * n, ldc: n, split: !spread,
                              accumulate: accumulate)
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
    private static func mergedRowStride(_ a: Operand, _ b: Operand, batchShape: [Int], m: Int, k: Int) -> Int? {
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
    private func runFewRowsWithColumnEpilogue(a: Operand, b: Operand, m: Int, n: Int, k: Int, batchShape: [Int],
                                              into out: UnsafeMutablePointer<Float>, strides: [Int],
                                              addend: (Program, [LeafAccess])?, epilogue: (Program, [LeafAccess])?) -> Bool {
        guard (addend?.1 ?? []).allSatisfy(\.isStrided), (epilogue?.1 ?? []).allSatisfy(\.isStrided),
              let lda = Executor.mergedRowStride(a, b, batchShape: batchShape, m: m, k: k) else { return false }
        let rows = batchShape.reduce(1, *) * m
        guard BLAS.readsWeightInPlace(m: rows, n: n, k: k, a.layout, b.layout) else { return false }
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
            BLAS.fewRowsTimesWeight(m: rows, n: n, k: k, a: a.base, lda: lda, w: b.base, ldw: b.layout.leadingDimension,
                                    c: out, ldc: n, accumulate: addend != nil,
                                    prologue: { columns in if let job = shared.value.2 { restricted(job, columns) } },
                                    epilogue: { columns in if let job = shared.value.3 { restricted(job, columns) } })
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

    // MARK: convolution

    /// im2col + GEMM, per image and group. A 1x1 convolution with unit stride reads the image
    /// in place. The patch matrix is one buffer reused across images; each fill is counted as
    /// a copy with reason `.im2col`.
    private mutating func runConv(_ kernel: Kernel, product: Node, x: Program.Leaf, w: Program.Leaf, bias: Program.Leaf?,
                                  into out: UnsafeMutablePointer<Float>, storage: Storage) {
        guard case let .conv2d(p) = product.op else { return }
        let xs = x.node.shape, ws = w.node.shape, os = product.shape
        let (n, h, wd) = (xs[0], xs[2], xs[3])
        let (o, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3])
        let (ho, wo) = (os[2], os[3])
        let g = p.groups, og = o / g
        let k = cg * kh * kw, positions = ho * wo
        let X = access(x), W = access(w)
        // Weights as [O, K] rows for the BLAS; packed once if their layout does not allow it.
        var wPacked: Storage?
        var wBase = W.base + W.offset
        var wLayout = BLAS.Layout(transposed: false, leadingDimension: Swift.max(1, k))
        if let merged = W.isStrided ? Layout.reshapedStrides(shape: ws, strides: W.strides, to: [o, k]) : nil,
           let l = BLAS.layout(rows: o, cols: k, rowStride: merged[0], colStride: merged[1]) {
            wLayout = l
        } else {
            let block = Storage(allocatingByteCount: o * k * 4)
            let dst = block.baseAddress.assumingMemoryBound(to: Float.self)
            var e = 0, index = [0, 0, 0, 0]
            for a in 0..<ws[0] { for b in 0..<ws[1] { for c2 in 0..<ws[2] { for d in 0..<ws[3] {
                index = [a, b, c2, d]
                dst[e] = W.base[W.elementOffset(of: index)]
                e += 1
            } } } }
            Stats.recordCopy(bytes: o * k * 4, reason: .pack)
            wPacked = block
            wBase = UnsafePointer(dst)
        }
        let direct = kh == 1 && kw == 1 && p.stride == (1, 1) && p.padding == (0, 0) && X.isStrided
            && X.strides[3] == 1 && X.strides[2] == wd && X.strides[1] >= positions
        // Many small images (the digits CNN: 397 of 8x8): one GEMM per image is too small to
        // split over the workers or to amortise the BLAS's packing, so chunks of images are
        // lowered together, [K, images·positions], multiplied once, and reordered into NCHW.
        let perImage = og * positions * k
        if g == 1 && !direct && n > 1 && perImage < BLAS.splitThreshold {
            let chunk = Swift.max(1, Swift.min(n, (2 << 20) / Swift.max(1, 4 * k * positions)))
            let cols = Storage(allocatingByteCount: k * chunk * positions * 4)
            let product = Storage(allocatingByteCount: o * chunk * positions * 4)
            withExtendedLifetime((wPacked, cols, product)) {
                let colsBase = cols.baseAddress.assumingMemoryBound(to: Float.self)
                let productBase = product.baseAddress.assumingMemoryBound(to: Float.self)
                let shared = Unchecked((colsBase, productBase, out, X))
                for first in stride(from: 0, to: n, by: chunk) {
                    let count = Swift.min(chunk, n - first), width = count * positions
                    Parallel.forEach(items: count, work: count * k * positions) { range in
                        for b in range {
                            Executor.im2col(shared.value.3, image: first + b, channel0: 0, channels: cg, h: h, w: wd, kh: kh, kw: kw, p,
                                            ho: ho, wo: wo, into: shared.value.0 + b * positions, rowStride: width)
                        }
                    }
                    BLAS.gemm(m: o, n: width, k: k, a: wBase, wLayout, b: UnsafePointer(colsBase),
                              BLAS.Layout(transposed: false, leadingDimension: width), c: productBase, ldc: width)
                    Parallel.forEach(items: count, work: o * width) { range in
                        let (_, productBase, out, _) = shared.value
                        for b in range {
                            for channel in 0..<o {
                                (out + ((first + b) * o + channel) * positions)
                                    .update(from: productBase + channel * width + b * positions, count: positions)
                            }
                        }
                    }
                    Stats.recordCopy(bytes: k * width * 4, reason: .im2col)
                    Stats.recordCopy(bytes: o * width * 4, reason: .reorder)
                }
            }
        } else {
            // Several images: one image at a time per worker, each product whole on one thread
            // (splitting one product's columns made both workers pack the patch matrix's rows
            // and ran at one core's speed on this machine at times). One image: split inside.
            let perWorker = n >= Parallel.workers && Parallel.workers > 1
            let workers = perWorker ? Parallel.workers : 1
            let colsPerWorker = direct ? 0 : k * positions
            let cols = direct ? nil : Storage(allocatingByteCount: workers * colsPerWorker * 4)
            let shared = Unchecked((X, wBase, cols?.baseAddress.assumingMemoryBound(to: Float.self), out))
            let layout = wLayout
            withExtendedLifetime((wPacked, cols)) {
                let images = { @Sendable (range: Range<Int>, worker: Int) in
                    let (X, wBase, colsAll, out) = shared.value
                    // Rows of one group's weights start og rows down (og columns across, if transposed).
                    let weights = { (group: Int) in wBase + group * og * (layout.transposed ? 1 : layout.leadingDimension) }
                    for image in range {
                        for group in 0..<g {
                            let outBase = out + (image * o + group * og) * positions
                            if direct {
                                let xBase = X.base + X.offset + image * X.strides[0] + group * cg * X.strides[1]
                                BLAS.gemm(m: og, n: positions, k: k, a: weights(group), layout,
                                          b: xBase, BLAS.Layout(transposed: false, leadingDimension: X.strides[1]), c: outBase,
                                          ldc: positions, split: !perWorker)
                                continue
                            }
                            let colsBase = colsAll! + worker * colsPerWorker
                            Executor.im2col(X, image: image, channel0: group * cg, channels: cg, h: h, w: wd, kh: kh, kw: kw,
                                            p, ho: ho, wo: wo, into: colsBase, rowStride: positions)
                            BLAS.gemm(m: og, n: positions, k: k, a: weights(group), layout,
                                      b: UnsafePointer(colsBase), BLAS.Layout(transposed: false, leadingDimension: positions),
                                      c: outBase, ldc: positions, split: !perWorker)
                        }
                    }
                }
                if perWorker {
                    Parallel.run(workers) { w in images((n * w / workers)..<(n * (w + 1) / workers), w) }
                } else {
                    images(0..<n, 0)
                }
            }
            // Counted here: the workers run outside this task's Stats scope.
            if !direct { Stats.recordCopy(bytes: n * g * k * positions * 4, reason: .im2col) }
        }
        if let bias {
            let B = access(bias)
            for image in 0..<n {
                for channel in 0..<o {
                    var value = B.base[B.isStrided ? B.offset + channel * B.strides[0] : B.elementOffset(of: [channel])]
                    wk_binary(Int32(WK_ADD.rawValue), out + (image * o + channel) * positions, 1, &value, 0,
                              out + (image * o + channel) * positions, positions)
                }
            }
        }
        if let epilogue = kernel.programs.first {
            results[ObjectIdentifier(product)] = Node(.buffer(storage, offset: 0, strides: Tensor.contiguousStrides(for: os)),
                                                      [], shape: os)
            Executor.elementwise(epilogue, epilogue.leaves.map(access), into: out, strides: Tensor.contiguousStrides(for: os))
        }
    }

    /// Fills the patch matrix [channels·kh·kw, ho·wo] of one image and channel group, its rows
    /// `rowStride` apart (wider than ho·wo when several images share one matrix); each row is
    /// one call of wk_im2col_row for a strided input.
    static func im2col(_ X: LeafAccess, image: Int, channel0: Int, channels: Int, h: Int, w: Int, kh: Int, kw: Int,
                       _ p: Conv2DParameters, ho: Int, wo: Int, into cols: UnsafeMutablePointer<Float>, rowStride: Int) {
        let positions = ho * wo
        let shared = Unchecked((X, cols))
        Parallel.forEach(items: channels, work: channels * kh * kw * positions) { range in
            let (X, cols) = shared.value
            for c in range {
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let row = cols + ((c * kh + ki) * kw + kj) * rowStride
                        let shiftH = ki * p.dilation.0 - p.padding.0, shiftW = kj * p.dilation.1 - p.padding.1
                        if X.isStrided {
                            let plane = X.base + X.offset + image * X.strides[0] + (channel0 + c) * X.strides[1]
                            wk_im2col_row(plane, X.strides[2], X.strides[3], h, w, row, ho, wo, p.stride.0, p.stride.1, shiftH, shiftW)
                            continue
                        }
                        for oi in 0..<ho {
                            let ih = oi * p.stride.0 + shiftH
                            for oj in 0..<wo {
                                let iw = oj * p.stride.1 + shiftW
                                row[oi * wo + oj] = ih >= 0 && ih < h && iw >= 0 && iw < w
                                    ? X.base[X.elementOffset(of: [image, channel0 + c, ih, iw])] : 0
                            }
                        }
                    }
                }
            }
        }
    }

    static func pool(_ X: LeafAccess, shape: [Int], _ p: Pool2DParameters, into out: UnsafeMutablePointer<Float>, outShape: [Int]) {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (ho, wo) = (outShape[2], outShape[3])
        let shared = Unchecked((X, out))
        let area = Float(p.kernel.0 * p.kernel.1)
        let isMax = p.kind == .max
        Parallel.forEach(items: n * c, work: n * c * ho * wo * p.kernel.0 * p.kernel.1) { range in
            let (X, out) = shared.value
            // A strided input (the usual case) is read through four hoisted strides; anything
            // else through the general index map.
            let strided = X.isStrided
            let (s0, s1, s2, s3) = strided ? (X.strides[0], X.strides[1], X.strides[2], X.strides[3]) : (0, 0, 0, 0)
            let base = X.base + X.offset
            var index = [0, 0, 0, 0]
            for plane in range {
                let (image, channel) = (plane / c, plane % c)
                let planeBase = base + image * s0 + channel * s1
                index[0] = image
                index[1] = channel
                if strided && s3 == 1 && isMax && p.kernel == (2, 2) && p.stride == (2, 2) && p.padding == (0, 0) {
                    // The common 2x2 max pool: two input rows per output row, no bounds.
                    for oi in 0..<ho {
                        let r0 = planeBase + 2 * oi * s2, r1 = r0 + s2
                        let o = out + (plane * ho + oi) * wo
                        for oj in 0..<wo {
                            let a = r0[2 * oj], b = r0[2 * oj + 1], c = r1[2 * oj], d = r1[2 * oj + 1]
                            let m = Swift.max(Swift.max(a, b), Swift.max(c, d))
                            o[oj] = a.isNaN || b.isNaN || c.isNaN || d.isNaN ? .nan : m
                        }
                    }
                    continue
                }
                for oi in 0..<ho {
                    let ih0 = oi * p.stride.0 - p.padding.0
                    let ki0 = Swift.max(0, -ih0), ki1 = Swift.min(p.kernel.0, h - ih0)
                    for oj in 0..<wo {
                        let iw0 = oj * p.stride.1 - p.padding.1
                        let kj0 = Swift.max(0, -iw0), kj1 = Swift.min(p.kernel.1, w - iw0)
                        var best = -Float.infinity, sum: Float = 0, nan = false
                        var ki = ki0
                        while ki < ki1 {
                            var kj = kj0
                            while kj < kj1 {
                                let v: Float
                                if strided {
                                    v = planeBase[(ih0 + ki) * s2 + (iw0 + kj) * s3]
                                } else {
                                    index[2] = ih0 + ki
                                    index[3] = iw0 + kj
                                    v = X.base[X.elementOffset(of: index)]
                                }
                                nan = nan || v.isNaN
                                best = Swift.max(best, v)
                                sum += v
                                kj += 1
                            }
                            ki += 1
                        }
                        out[(plane * ho + oi) * wo + oj] = isMax ? (nan ? .nan : best) : sum / area
                    }
                }
            }
        }
    }

    // MARK: drivers

    /// Splits `items` over the workers, each with its own evaluator (scratch) for `p`.
    static func withEvaluators(_ p: Program, _ leaves: [LeafAccess], items: Int, work: Int,
                               _ body: @Sendable (inout Evaluator, Range<Int>) -> Void) {
        let shared = Unchecked((p, leaves))
        Parallel.forEach(items: items, work: work) { range in
            var evaluator = Evaluator(program: shared.value.0, leaves: shared.value.1)
            defer { evaluator.deallocate() }
            body(&evaluator, range)
        }
    }

    /// Writes the program's values over its space into `dest` with `strides`.
    static func elementwise(_ p: Program, _ leaves: [LeafAccess], into dest: UnsafeMutablePointer<Float>, strides: [Int]) {
        let total = p.space.reduce(1, *)
        guard total > 0 else { return }
        if let (refined, refinedLeaves, refinedStrides) = refine(p.space, leaves, strides) {
            var q = p
            q.space = refined
            elementwise(q, refinedLeaves, into: dest, strides: refinedStrides)
            return
        }
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
        let shared = Unchecked((dest, destStrides, space))
        withEvaluators(p, leaves, items: rows * perRow, work: total) { evaluator, range in
            let (dest, destStrides, space) = shared.value
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

    /// When an input is read through a reshape its layout cannot express as strides (the
    /// attention context [B, heads, T, d] seen as [B, T, H]), the whole loop can often run over
    /// the finer shape instead, where every input and the output are strided again: a reshape
    /// does not change row-major order. Returns that space, or nil.
    static func refine(_ space: [Int], _ leaves: [LeafAccess], _ destStrides: [Int]) -> ([Int], [LeafAccess], [Int])? {
        guard let first = leaves.first(where: { !$0.isStrided }), case let .reshape(from, to)? = first.residual.first,
              from == space, to.count > space.count,
              let dest = Layout.reshapedStrides(shape: space, strides: destStrides, to: to) else { return nil }
        var refined: [LeafAccess] = []
        for leaf in leaves {
            if leaf.isStrided {
                guard let s = Layout.reshapedStrides(shape: space, strides: leaf.strides, to: to) else { return nil }
                var l = leaf
                l.strides = s
                refined.append(l)
            } else {
                guard case let .reshape(f, t)? = leaf.residual.first, f == from, t == to else { return nil }
                let l = LeafAccess(base: leaf.base, offset: leaf.offset, strides: leaf.strides,
                                   steps: Array(leaf.residual.dropFirst()))
                guard l.isStrided else { return nil }
                refined.append(l)
            }
        }
        return (to, refined, dest)
    }

    /// Program space: kept ++ reduced (row mode) or reduced ++ kept (column mode); the output
    /// is contiguous over the kept axes.
    static func reduce(_ p: Program, _ leaves: [LeafAccess], op: ReduceOp, keptRank: Int, reducedRank: Int,
                       rowMode: Bool, count: Int, into dest: UnsafeMutablePointer<Float>) {
        var p = p, leaves = leaves, mergedKept = keptRank, mergedReduced = reducedRank
        // Merge axes within each group (kept, reduced) where every input allows, so the inner
        // loops are long: reducing the channels of [32, 64, 8, 8] walks 64-long rows, not 8.
        if leaves.allSatisfy(\.isStrided) {
            let split = rowMode ? keptRank : reducedRank
            func group(_ r: Range<Int>) -> ([Int], [[Int]]) {
                let (s, st) = coalesce(shape: Array(p.space[r]), strides: leaves.map { Array($0.strides[r]) })
                return s.isEmpty ? ([1], leaves.map { _ in [0] }) : (s, st)
            }
            let (s1, st1) = group(0..<split), (s2, st2) = group(split..<p.space.count)
            p.space = s1 + s2
            for i in leaves.indices { leaves[i].strides = st1[i] + st2[i] }
            if rowMode { mergedKept = s1.count; mergedReduced = s2.count } else { mergedReduced = s1.count; mergedKept = s2.count }
        }
        let keptRank = mergedKept, reducedRank = mergedReduced
        let space = p.space
        let scale: Float = op == .mean ? 1 / Float(Swift.max(count, 1)) : 1
        let shared = Unchecked(dest)
        if rowMode {
            let keptShape = space[0..<keptRank], reducedShape = space[keptRank...]
            let outputs = keptShape.reduce(1, *)
            let inner = reducedShape.last ?? 1
            let reducedRows = reducedShape.dropLast().reduce(1, *)
            withEvaluators(p, leaves, items: outputs, work: outputs * count) { evaluator, range in
                let dest = shared.value
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
            withEvaluators(p, leaves, items: keptRows * perRow, work: keptRows * inner * Swift.max(reducedCount, 1)) { evaluator, range in
                let dest = shared.value
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
        let shared = Unchecked(dest)
        withEvaluators(p, leaves, items: outputs, work: outputs * inner) { evaluator, range in
            let dest = shared.value
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
        let shared = Unchecked((dest, w, b))
        withEvaluators(p, leaves, items: outer, work: outer * length) { evaluator, range in
            let (dest, w, b) = shared.value
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: length)
            defer { buffer.deallocate() }
            var index = [Int](repeating: 0, count: space.count)
            let rowDims = space.dropLast()
            let unitOutput = strides[space.count - 1] == 1
            for o in range {
                unravel(o, rowDims, into: &index, at: 0)
                var position = 0
                for a in 0..<(space.count - 1) { position += index[a] * strides[a] }
                // A contiguous output row is written in place; a row that fits one block is
                // read straight from the evaluator (often the input itself): no copies.
                let target = unitOutput ? dest + position : buffer
                var source = UnsafePointer(buffer)
                index[space.count - 1] = 0
                if length <= Evaluator.block, case let (v, 1) = evaluator.run(at: index, count: length) {
                    source = v
                } else {
                    var start = 0
                    while start < length {
                        index[space.count - 1] = start
                        let n = Swift.min(Evaluator.block, length - start)
                        let (v, s) = evaluator.run(at: index, count: n)
                        wk_scatter(v, s, buffer + start, 1, n)
                        start += n
                    }
                }
                switch op {
                case .softmax: wk_softmax_row(source, target, length, 0)
                case .logSoftmax: wk_softmax_row(source, target, length, 1)
                case .layerNorm(let eps): wk_norm_row(source, target, length, w, sw, b, sb, eps, 0)
                case .rmsNorm(let eps): wk_norm_row(source, target, length, w, sw, nil, 0, eps, 1)
                }
                if !unitOutput { wk_scatter(buffer, 1, dest + position, strides[space.count - 1], length) }
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
