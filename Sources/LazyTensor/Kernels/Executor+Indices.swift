import CKernels

/// The typed kernels: conversions between float32 and the index types, topK, take. They move
/// elements by their own size, reading integer leaves through raw addresses (a LeafAccess's
/// offsets and strides count elements, whatever their type).
extension Executor {
    /// Element offset of every index of `space`, row-major, into the leaf.
    static func offsets(_ leaf: LeafAccess, space: [Int]) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(space.reduce(1, *))
        if leaf.isStrided {
            Layout.forEachOffset(shape: space, strides: leaf.strides) { out.append(leaf.offset + $0) }
        } else {
            Layout.forEachIndex(space) { out.append(leaf.elementOffset(of: $0)) }
        }
        return out
    }

    @inline(__always)
    static func loadIndex(_ base: UnsafeRawPointer, _ dtype: DType, _ offset: Int) -> Int {
        dtype == .int64 ? Int(base.load(fromByteOffset: offset * 8, as: Int64.self))
            : Int(base.load(fromByteOffset: offset * 4, as: Int32.self))
    }

    /// Integers are read through the program's one leaf; a float source runs its program
    /// (a fused chain, say) into a scratch block first, then converts. Float to integer
    /// truncates toward zero; NaN, infinities and values out of range are an error.
    static func convert(_ p: Program, _ leaves: [LeafAccess], from: DType, to: DType, into dest: UnsafeMutableRawPointer) {
        let count = p.space.reduce(1, *)
        guard count > 0 else { return }
        if from == .float32 {
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: count)
            defer { scratch.deallocate() }
            elementwise(p, leaves, into: scratch, strides: Tensor.contiguousStrides(for: p.space))
            for i in 0..<count {
                let v = scratch[i]
                let limit: Float = to == .int64 ? 9.2233715e18 : 2.1474836e9
                guard v.isFinite, Swift.abs(v) < limit else {
                    Tensor.reportValue(TensorError(op: "convert", shapes: [p.space], reason: "\(v) is not representable as \(to)"))
                    if to == .int64 { dest.storeBytes(of: 0, toByteOffset: i * 8, as: Int64.self) } else {
                        dest.storeBytes(of: 0, toByteOffset: i * 4, as: Int32.self)
                    }
                    continue
                }
                if to == .int64 { dest.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) } else {
                    dest.storeBytes(of: Int32(v), toByteOffset: i * 4, as: Int32.self)
                }
            }
            return
        }
        guard case .load(let l) = p.instructions.first, p.isPureLoad else { preconditionFailure("an integer leaf is loaded, not computed") }
        let leaf = leaves[l]
        if from.isCodedWeight {
            precondition(to == .float32, "a coded weight widens to float32 only")
            widen(leaf, code: Int32(from.rawValue), space: p.space, into: dest.assumingMemoryBound(to: Float.self))
            return
        }
        let base = UnsafeRawPointer(leaf.base)
        for (i, offset) in offsets(leaf, space: p.space).enumerated() {
            let v = loadIndex(base, from, offset)
            switch to {
            case .float32: dest.storeBytes(of: Float(v), toByteOffset: i * 4, as: Float.self)
            case .int64: dest.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self)
            default: dest.storeBytes(of: Int32(truncatingIfNeeded: v), toByteOffset: i * 4, as: Int32.self)
            }
        }
    }

    /// A coded weight's view as float32: runs along its last axis decoded together when they
    /// are contiguous (a whole weight, or rows of it), element by element otherwise.
    static func widen(_ leaf: LeafAccess, code: Int32, space: [Int], into dest: UnsafeMutablePointer<Float>) {
        let base = UnsafeRawPointer(leaf.base)
        if leaf.isStrided, let n = space.last, n > 0, leaf.strides.last == 1 {
            var row = 0
            Layout.forEachOffset(shape: Array(space.dropLast()), strides: Array(leaf.strides.dropLast())) { offset in
                wk_decode(code, base, leaf.offset + offset, n, dest + row * n)
                row += 1
            }
            return
        }
        for (i, offset) in offsets(leaf, space: space).enumerated() { dest[i] = wk_coded_element(code, base, offset) }
    }

    /// Program space: the input with the selected axis last; writes k indices per row, at
    /// `strides` (the output's, in that axis order).
    static func topK(_ p: Program, _ leaves: [LeafAccess], k: Int, largest: Bool, into dest: UnsafeMutablePointer<Int64>,
                     strides: [Int]) {
        let space = p.space
        let n = space.last ?? 0
        let rows = space.dropLast().reduce(1, *)
        guard rows > 0, k > 0 else { return }
        let shared = Unchecked(dest)
        withEvaluators(p, leaves, items: rows, work: rows * n * 4) { evaluator, range in
            let dest = shared.value
            var values = [Float](repeating: 0, count: n)
            var order = [Int](repeating: 0, count: n)
            var index = [Int](repeating: 0, count: space.count)
            for row in range {
                unravel(row, space.dropLast(), into: &index, at: 0)
                var position = 0
                for a in 0..<(space.count - 1) { position += index[a] * strides[a] }
                var start = 0
                while start < n {
                    index[space.count - 1] = start
                    let m = Swift.min(Evaluator.block, n - start)
                    let (v, s) = evaluator.run(at: index, count: m)
                    for i in 0..<m { values[start + i] = s == 0 ? v.pointee : v[i] }
                    start += m
                }
                // NaN first when largest (PyTorch's order), last when smallest; ties by index.
                func before(_ a: Int, _ b: Int) -> Bool {
                    let x = values[a], y = values[b]
                    if x.isNaN || y.isNaN { return x.isNaN && !y.isNaN ? largest : (!x.isNaN && y.isNaN ? !largest : a < b) }
                    if x != y { return largest ? x > y : x < y }
                    return a < b
                }
                for i in 0..<n { order[i] = i }
                if k * 8 < n {
                    // Keep the best k seen so far, sorted: one pass for a short k over a long row.
                    var best: [Int] = []
                    for i in 0..<n {
                        if best.count == k, !before(i, best[k - 1]) { continue }
                        var lo = 0, hi = best.count
                        while lo < hi { let mid = (lo + hi) / 2; if before(best[mid], i) { lo = mid + 1 } else { hi = mid } }
                        best.insert(i, at: lo)
                        if best.count > k { best.removeLast() }
                    }
                    for j in 0..<k { dest[position + j * strides[space.count - 1]] = Int64(best[j]) }
                } else {
                    order.sort(by: before)
                    for j in 0..<k { dest[position + j * strides[space.count - 1]] = Int64(order[j]) }
                }
            }
        }
    }

    /// NumPy's take (or take_along_axis) of a buffer table by a buffer of indices. Every index
    /// is checked before anything is written; a bad one is a TensorError (outside withErrors,
    /// the end of the process) and its elements are zeros.
    static func take(_ table: LeafAccess, _ tableNode: Node, indices: LeafAccess, _ indexNode: Node, axis: Int, alongAxis: Bool,
                     outShape: [Int], into dest: UnsafeMutableRawPointer) {
        let size = tableNode.dtype.isCodedWeight ? 4 : tableNode.dtype.byteSize  // a coded table's rows come out as float32
        let extent = tableNode.shape[axis]
        let indexBase = UnsafeRawPointer(indices.base)
        let indexValues = offsets(indices, space: indexNode.shape).map { loadIndex(indexBase, indexNode.dtype, $0) }
        if let bad = indexValues.first(where: { !(-extent..<extent).contains($0) }) {
            Tensor.reportValue(TensorError(op: alongAxis ? "takeAlongAxis" : "take", shapes: [tableNode.shape, indexNode.shape],
                                           reason: "index \(bad) is out of range for axis \(axis) of size \(extent)"))
            dest.initializeMemory(as: UInt8.self, repeating: 0, count: outShape.reduce(1, *) * size)
            return
        }
        if axis == 0, !alongAxis, tableNode.dtype == .float32 || tableNode.dtype.isCodedWeight {
            // Whole rows (an embedding lookup; Node admits no other take of a coded table), as
            // gatherRows picks them: each row one copy, or decoded straight into the output.
            // Element by element, 16 rows of 384 took 290 us.
            gather(indexValues.map { $0 < 0 ? $0 + extent : $0 }, table: table, tableShape: tableNode.shape,
                   coding: tableNode.dtype, into: dest.assumingMemoryBound(to: Float.self))
            return
        }
        let tableBase = UnsafeRawPointer(table.base)
        let rank = tableNode.shape.count
        var out = 0
        Layout.forEachIndex(outShape) { index in
            var source = [Int](repeating: 0, count: rank)
            var picked: Int
            if alongAxis {
                source = index
                picked = indexValues[out]
            } else {
                let indexRank = indexNode.shape.count
                for a in 0..<axis { source[a] = index[a] }
                var flat = 0
                for a in 0..<indexRank { flat = flat * indexNode.shape[a] + index[axis + a] }
                picked = indexValues[flat]
                for a in (axis + 1)..<Swift.max(rank, axis + 1) { source[a] = index[a + indexRank - 1] }
            }
            if picked < 0 { picked += extent }
            source[axis] = picked
            let offset: Int
            if table.isStrided {
                var o = table.offset
                for a in 0..<rank { o += source[a] * table.strides[a] }
                offset = o
            } else {
                offset = table.elementOffset(of: source)
            }
            (dest + out * size).copyMemory(from: tableBase + offset * size, byteCount: size)
            out += 1
        }
    }
}
