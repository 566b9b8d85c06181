/// One unit of work of a plan: it writes one node's result into a fresh contiguous buffer.
struct Kernel: Sendable {
    enum Kind: Sendable {
        /// The program over the node's shape, written in order.
        case elementwise
        /// The program is over the input permuted to kept ++ reduced axes (row mode, the
        /// reduced axes innermost) or reduced ++ kept (column mode, accumulating rows).
        case reduce(ReduceOp, keptAxes: [Int], reducedAxes: [Int], rowMode: Bool)
        case argReduce(minimum: Bool, axis: Int)
        /// The program is over the input with `axis` moved last; weight and bias are leaves.
        case row(RowOp, axis: Int, weight: Program.Leaf?, bias: Program.Leaf?)
        case gather(indices: [Int], table: Program.Leaf)
        /// One program per part, each over the part's shape.
        case concat(axis: Int)
        case pad(widths: [Int], value: Float)
        /// programs[0] and [1] are the operands over their own shapes; programs[2], when
        /// present, is an elementwise epilogue over the output that reads `product` (the GEMM
        /// result, written into this kernel's output first) in place.
        case matmul(product: Node)
        /// im2col + GEMM per image and group; programs[0], when present, is the epilogue.
        /// With `pool`, the node is a pooling of the convolution's output (its only reader):
        /// that output is a scratch buffer, pooled image by image while it is in cache.
        case conv2d(product: Node, x: Program.Leaf, w: Program.Leaf, bias: Program.Leaf?, pool: Pool2DParameters?)
        case pool2d(input: Program.Leaf)
        /// programs: q, k, v and the mask when present, each over its own shape.
        case attention(AttentionParameters)
        /// programs[0] is the value over its own shape, written into the node's target view.
        case write(axis: Int)
        /// programs[0] is the input over its own shape (a pure load when it is an integer).
        case convert(from: DType)
        /// programs[0] is the input with `axis` moved last.
        case topK(k: Int, axis: Int, largest: Bool)
        case take(axis: Int, alongAxis: Bool, table: Program.Leaf, indices: Program.Leaf)
    }

    let node: Node
    let kind: Kind
    let programs: [Program]

    /// Kernels that only move data (a view made contiguous, a lookup, a concatenation) count
    /// their output as copied bytes.
    var isCopy: Bool {
        switch kind {
        case .elementwise: programs[0].isPureLoad
        case .gather, .concat: programs.allSatisfy(\.isPureLoad)
        case .pad: programs[0].isPureLoad
        case .write: programs[0].isPureLoad
        case .convert, .take: true
        default: false  // a matmul computes
        }
    }

    /// Bytes of the buffer the kernel allocates for its result (a write allocates none).
    var outputBytes: Int {
        if case .write = kind { return 0 }
        return node.elementCount * node.dtype.byteSize
    }

    /// Bytes the kernel writes into its result: the whole output, or a write's new elements.
    var writtenBytes: Int {
        if case .write = kind { return programs[0].space.reduce(1, *) * MemoryLayout<Float>.stride }
        return node.elementCount * node.dtype.byteSize
    }

    var name: String {
        switch kind {
        case .elementwise: isCopy ? "copy" : "elementwise"
        case let .reduce(op, _, axes, rowMode): "reduce.\(op) axes \(axes) (\(rowMode ? "rows" : "columns"))"
        case let .argReduce(minimum, axis): "\(minimum ? "argmin" : "argmax") axis \(axis)"
        case let .row(op, axis, _, _): "\(op.name) axis \(axis)"
        case let .gather(indices, _): "gather \(indices.count) rows"
        case let .concat(axis): "concatenate axis \(axis)"
        case .pad: "pad"
        case let .matmul(product): programs.count > 2 ? "matmul + epilogue" : (product.shape.count > 2 ? "matmul (batched)" : "matmul")
        case let .conv2d(_, _, _, _, pool): (programs.isEmpty ? "conv2d" : "conv2d + epilogue") + (pool == nil ? "" : " + pool2d")
        case .pool2d: "pool2d"
        case let .write(axis): "write in place, axis \(axis)"
        case let .convert(from): "convert \(from) -> \(node.dtype)"
        case let .topK(k, axis, largest): "top\(largest ? "" : " (smallest)") \(k) axis \(axis)"
        case let .take(axis, along, _, _): along ? "take along axis \(axis)" : "take axis \(axis)"
        case let .attention(p):
            "attention" + (p.causal ? ", causal" : "") + (p.segments.map { ", \($0.count) sequences packed" } ?? "")
        }
    }
}
