import CKernels

/// The loops that run a kernel's programs over its space: elementwise, reductions, rows,
/// lookups. Each splits its items over the pool, one evaluator (scratch) per worker.
extension Executor {
    // MARK: drivers

    /// Splits `items` over the workers, each with its own evaluator (scratch) for `p`.
    /// `longest`: the most elements any run asks for (at most Evaluator.block), which sizes
    /// the scratch.
    static func withEvaluators(_ p: Program, _ leaves: [LeafAccess], items: Int, work: Int, longest: Int = Evaluator.block,
                               _ body: @Sendable (inout Evaluator, Range<Int>) -> Void) {
        let shared = Unchecked((p, leaves))
        Parallel.forEach(items: items, work: work) { range in
            var evaluator = Evaluator(program: shared.value.0, leaves: shared.value.1, longest: longest)
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
        // A short last axis is run a tile of several of its rows at a time (see Evaluator.run).
        if let tileRows = Executor.tileRows(space) {
            elementwiseTiles(p, leaves, space: space, tileRows: tileRows, into: dest, strides: destStrides)
            return
        }
        let perRow = (inner + Evaluator.block - 1) / Evaluator.block
        let rows = rank <= 1 ? 1 : space[0..<(rank - 1)].reduce(1, *)
        let shared = Unchecked((dest, destStrides, space))
        withEvaluators(p, leaves, items: rows * perRow, work: total, longest: Swift.min(inner, Evaluator.block)) { evaluator, range in
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

    /// Rows of the second-to-last axis per evaluator run when the last axis of `space` is short
    /// (an elementwise space, or a column-mode reduction's kept axes), or nil.
    static func tileRows(_ space: [Int]) -> Int? {
        guard space.count >= 2, let inner = space.last, inner > 0, inner < Evaluator.block / 2 else { return nil }
        let rows = Swift.min(space[space.count - 2], Evaluator.block / inner)
        return rows > 1 ? rows : nil
    }

    /// The loop of `elementwise` over tiles of `tileRows` rows of the last two axes.
    private static func elementwiseTiles(_ p: Program, _ leaves: [LeafAccess], space: [Int], tileRows: Int,
                                         into dest: UnsafeMutablePointer<Float>, strides destStrides: [Int]) {
        let rank = space.count, inner = space[rank - 1], middle = space[rank - 2]
        let tilesPerRow = (middle + tileRows - 1) / tileRows
        let outer = space[0..<(rank - 2)].reduce(1, *)
        let shared = Unchecked((dest, destStrides, space))
        withEvaluators(p, leaves, items: outer * tilesPerRow, work: space.reduce(1, *), longest: tileRows * inner) { evaluator, range in
            let (dest, destStrides, space) = shared.value
            var index = [Int](repeating: 0, count: rank)
            for item in range {
                let tile = item % tilesPerRow
                unravel(item / tilesPerRow, space[0..<(rank - 2)], into: &index, at: 0)
                index[rank - 2] = tile * tileRows
                index[rank - 1] = 0
                let rows = Swift.min(tileRows, middle - tile * tileRows)
                let (value, stride) = evaluator.run(at: index, rows: rows, count: inner)
                var position = 0
                for a in 0..<rank { position += index[a] * destStrides[a] }
                for r in 0..<rows {
                    wk_scatter(value + r * inner * stride, stride, dest + position + r * destStrides[rank - 2], destStrides[rank - 1], inner)
                }
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
        } else if let tileRows = Executor.tileRows(Array(space[reducedRank...])) {
            // Short kept rows (the 8 x 8 pixels of [32, 64, 8, 8] summed over channels): each
            // pass accumulates a tile of several rows at once (see Evaluator.run).
            let reducedShape = space[0..<reducedRank], keptShape = Array(space[reducedRank...])
            let inner = keptShape[keptShape.count - 1], middle = keptShape[keptShape.count - 2]
            let tiles = (middle + tileRows - 1) / tileRows
            let outer = keptShape.dropLast(2).reduce(1, *)
            let reducedCount = reducedShape.reduce(1, *)
            withEvaluators(p, leaves, items: outer * tiles, work: outer * middle * inner * Swift.max(reducedCount, 1),
                           longest: tileRows * inner) { evaluator, range in
                let dest = shared.value
                let acc = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * inner)
                defer { acc.deallocate() }
                var index = [Int](repeating: 0, count: space.count)
                for item in range {
                    let tile = item % tiles, rows = Swift.min(tileRows, middle - tile * tileRows), n = rows * inner
                    acc.initialize(repeating: op.identity, count: n)
                    unravel(item / tiles, keptShape.dropLast(2)[...], into: &index, at: reducedRank)
                    index[space.count - 2] = tile * tileRows
                    index[space.count - 1] = 0
                    for r in 0..<reducedCount {
                        unravel(r, reducedShape, into: &index, at: 0)
                        let (v, s) = evaluator.run(at: index, rows: rows, count: inner)
                        wk_accumulate(op.code, acc, v, s, n)
                    }
                    let out = dest + ((item / tiles) * middle + tile * tileRows) * inner
                    for i in 0..<n { out[i] = acc[i] * scale }
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
    static func argReduce(_ p: Program, _ leaves: [LeafAccess], minimum: Bool, into dest: UnsafeMutablePointer<Int64>) {
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
                dest[k] = Int64(best)
            }
        }
    }

    /// Whether a row op's weight or bias is gathered into a contiguous vector first (a `.pack`
    /// copy): when it is neither unit-stride nor a broadcast scalar.
    static func rowParameterIsPacked(_ leaf: LeafAccess) -> Bool {
        let s = leaf.strides.first ?? 0
        return !(leaf.isStrided && (s == 0 || s == 1))
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
            if !rowParameterIsPacked(leaf) { return (nil, leaf.base + leaf.offset, leaf.strides.first ?? 0) }
            let copy = UnsafeMutablePointer<Float>.allocate(capacity: length)
            for i in 0..<length { copy[i] = leaf.base[leaf.elementOffset(of: [i])] }
            Stats.recordCopy(bytes: length * MemoryLayout<Float>.stride, reason: .pack)
            return (copy, UnsafePointer(copy), 1)
        }
        let (wOwned, w, sw) = vector(weight), (bOwned, b, sb) = vector(bias)
        defer { wOwned?.deallocate(); bOwned?.deallocate() }
        let shared = Unchecked((dest, w, b))
        @Sendable func apply(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>?,
                   _ b: UnsafePointer<Float>?) {
            switch op {
            case .softmax: wk_softmax_row(source, target, length, 0)
            case .logSoftmax: wk_softmax_row(source, target, length, 1)
            case .layerNorm(let eps): wk_norm_row(source, target, length, w, sw, b, sb, eps, 0)
            case .rmsNorm(let eps): wk_norm_row(source, target, length, w, sw, nil, 0, eps, 1)
            }
        }
        // Rows read in place and written in place, evenly spaced on both sides (a contiguous
        // [4096, 384], say): one pointer step a row, no evaluator. The general loop below spent
        // more per row on its bookkeeping than a 384-long layer norm costs.
        if p.isPureLoad, case .load(let l) = p.instructions[0], leaves[l].isStrided,
           leaves[l].strides.last == 1 || length == 1, strides.last == 1 || length == 1 {
            let rowAxes = Array(space.dropLast())
            let (merged, st) = coalesce(shape: rowAxes, strides: [Array(leaves[l].strides.dropLast()), Array(strides.dropLast())])
            if merged.count <= 1 {
                let (inStep, outStep) = merged.isEmpty ? (0, 0) : (st[0][0], st[1][0])
                let source = Unchecked(leaves[l].base + leaves[l].offset)
                Parallel.forEach(items: outer, work: outer * length) { range in
                    let (dest, w, b) = shared.value
                    for o in range { apply(source.value + o * inStep, dest + o * outStep, w, b) }
                }
                return
            }
        }
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
                apply(source, target, w, b)
                if !unitOutput { wk_scatter(buffer, 1, dest + position, strides[space.count - 1], length) }
            }
        }
    }

    /// Rows of `table` picked by `indices`; a coded table (Node.isCodedTable) has each picked
    /// row decoded, and no other.
    static func gather(_ indices: [Int], table: LeafAccess, tableShape: [Int], coding: DType = .float32,
                       into dest: UnsafeMutablePointer<Float>) {
        let rest = Array(tableShape.dropFirst())
        let rowLength = rest.reduce(1, *)
        let restStrides = Array(table.strides.dropFirst())
        if coding.isCodedWeight {
            let shared = Unchecked((table, dest))
            Parallel.forEach(items: indices.count, work: indices.count * rowLength) { range in
                let (table, dest) = shared.value
                // Each row is stored runs along the last axis (Node.isCodedTable): decode them.
                let width = rest.last ?? 1
                var restIndex = [Int](repeating: 0, count: rest.count)
                for i in range {
                    for r in 0..<(width == 0 ? 0 : rowLength / width) {
                        unravel(r * width, rest[...], into: &restIndex, at: 0)
                        let start = table.elementOffset(of: [indices[i]] + restIndex)
                        wk_decode(Int32(coding.rawValue), UnsafeRawPointer(table.base), start, width, dest + i * rowLength + r * width)
                    }
                }
            }
            return
        }
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
