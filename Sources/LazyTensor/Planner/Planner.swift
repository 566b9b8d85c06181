/// Turns a lazy graph into as few kernels as the fusion rules allow.
///
/// The rules (DESIGN.md section 2, as tinygrad and MLX's compile do):
/// - elementwise ops, broadcasts and views run inside the kernel that consumes them;
/// - reductions, row operations (softmax, norms), gathers, concatenations and pads are kernel
///   boundaries; their own input chain runs inside them as a prologue;
/// - a node with several consumers is recomputed by each when cheap, computed once and stored
///   when not (transcendental functions, or a long chain);
/// - a fused program is capped at `maxGroup` instructions;
/// - only requested results and the intermediates these rules require get buffers.
struct Planner {
    static let maxGroup = 48
    static let sharedCostLimit = 8

    private(set) var kernels: [Kernel] = []
    /// Nodes that get a buffer, in the order they are computed.
    private var boundary: Set<ObjectIdentifier> = []
    private var consumers: [ObjectIdentifier: Int] = [:]
    private var costMemo: [ObjectIdentifier: Int] = [:]
    private var roots: Set<ObjectIdentifier> = []
    /// Matmul nodes whose single consumer applies an elementwise epilogue to their output in
    /// place: consumer → product.
    private var epilogues: [ObjectIdentifier: Node] = [:]
    private var fusedProducts: Set<ObjectIdentifier> = []
    /// Poolings that take in the convolution kernel they read (its output used nowhere
    /// else): pool → the convolution's output node (the product or its epilogue).
    private var pooledConvolutions: [ObjectIdentifier: Node] = [:]

    init(roots: [Node]) {
        self.roots = Set(roots.map { ObjectIdentifier($0) })
        // One iterative walk, inputs first; every pass below runs down this list instead of
        // recursing, so depth costs no stack.
        let lazy = Node.postOrder(roots) { $0.realized == nil }.filter { $0.realized == nil }
        for node in lazy { for input in node.inputs { consumers[ObjectIdentifier(input), default: 0] += 1 } }
        for root in roots where root.realized == nil { boundary.insert(ObjectIdentifier(root)) }
        for node in lazy { markBoundaries(node) }
        for node in lazy { findEpilogues(node) }
        for node in lazy { findPooledConvolution(node) }
        for node in lazy { schedule(node) }
        // A root that is a strided view of a buffer is made contiguous by a copy kernel.
        for root in roots where root.isBuffer && !kernels.contains(where: { $0.node === root }) {
            if case let .buffer(_, _, strides) = root.op, !Layout.isRowMajor(shape: root.shape, strides: strides) {
                let kind: Kernel.Kind = root.dtype == .float32 ? .elementwise : .convert(from: root.dtype)
                kernels.append(Kernel(node: root, kind: kind, programs: [program(for: root, order: nil, inlineRoot: true)]))
            }
        }
    }

    /// How many times each input node is consumed by a node that still has to be computed.
    static func consumerCounts(_ kernels: [Kernel]) -> [ObjectIdentifier: Int] {
        var counts: [ObjectIdentifier: Int] = [:]
        for k in kernels { for leaf in k.allLeaves { counts[ObjectIdentifier(leaf.node), default: 0] += 1 } }
        return counts
    }


    /// Cost of computing a node inline: its op count within the fused group (a shared input
    /// counted for each use), transcendental functions counted heavier, saturating at
    /// `costCeiling` since it is only ever compared with small limits.
    private mutating func inlineCost(_ node: Node) -> Int {
        let region = Node.postOrder([node]) { [boundary, costMemo] n in
            n.realized == nil && !boundary.contains(ObjectIdentifier(n)) && costMemo[ObjectIdentifier(n)] == nil
        }
        for n in region where costMemo[ObjectIdentifier(n)] == nil {
            if n.realized != nil || boundary.contains(ObjectIdentifier(n)) { costMemo[ObjectIdentifier(n)] = 0; continue }
            var cost: Int
            switch n.op {
            case .unary(let op): cost = op.isTranscendental ? 8 : 1
            case .binary(let op): cost = op == .pow || op == .div ? 4 : 1
            case .view, .constant: cost = 0
            default: cost = 1
            }
            for input in n.inputs { cost = Swift.min(cost + (costMemo[ObjectIdentifier(input)] ?? 0), Planner.costCeiling) }
            costMemo[ObjectIdentifier(n)] = cost
        }
        return costMemo[ObjectIdentifier(node)] ?? 0
    }

    static let costCeiling = 1 << 20

    /// Decides whether `node` gets a buffer; its inputs have been decided already.
    private mutating func markBoundaries(_ node: Node) {
        let id = ObjectIdentifier(node)
        if node.isKernelBoundary { boundary.insert(id) }
        if case .row = node.op {
            // Weight and bias are read as plain vectors: make lazy ones real first.
            for p in node.inputs.dropFirst() where p.realized == nil { boundary.insert(ObjectIdentifier(p)) }
        }
        switch node.op {
        case .matmul, .attention:
            // A computed operand (a projection with its bias, say) is stored once in its own
            // kernel, where it can be a GEMM epilogue; the GEMM then reads it through its views.
            for input in node.inputs {
                var base = input
                while case .view = base.op, base.realized == nil { base = base.inputs[0] }
                if base.realized == nil { boundary.insert(ObjectIdentifier(base)) }
            }
        default: break
        }
        switch node.op {
        case .gather, .conv2d, .pool2d, .take:
            // Read as buffers through their strides: make lazy inputs real first.
            for input in node.inputs where input.realized == nil { boundary.insert(ObjectIdentifier(input)) }
        default: break
        }
        if (consumers[id] ?? 0) >= 2, !boundary.contains(id), inlineCost(node) >= Planner.sharedCostLimit {
            boundary.insert(id)
        }
        // Cap the fused group: store the largest inlined inputs until the rest fits.
        while true {
            let size = groupSize(node)
            if size <= Planner.maxGroup { break }
            guard let biggest = node.inputs.filter({ $0.realized == nil && !boundary.contains(ObjectIdentifier($0)) })
                .max(by: { groupSize($0) < groupSize($1) }) else { break }
            boundary.insert(ObjectIdentifier(biggest))
            costMemo = [:]
        }
    }

    /// An elementwise kernel whose chain reads, at its own shape and without any view, a matmul
    /// used nowhere else takes that matmul in: the GEMM writes straight into the kernel's
    /// output and the chain (bias, residual, activation) runs over it once, in place.
    private mutating func findEpilogues(_ node: Node) {
        guard boundary.contains(ObjectIdentifier(node)), !node.isKernelBoundary else { return }
        var candidates: [Node] = []
        func walk(_ n: Node) {
            if n !== node && (n.realized != nil || boundary.contains(ObjectIdentifier(n))) {
                switch n.op {
                case .matmul, .conv2d: if n.realized == nil, n.shape == node.shape { candidates.append(n) }
                default: break
                }
                return
            }
            switch n.op {
            case .unary, .binary, .select: for i in n.inputs { walk(i) }
            default: return  // views change indexing: the product would not be read in place
            }
        }
        walk(node)
        if let product = candidates.first, candidates.allSatisfy({ $0 === product }),
           consumers[ObjectIdentifier(product)] == 1, !roots.contains(ObjectIdentifier(product)) {
            epilogues[ObjectIdentifier(node)] = product
            fusedProducts.insert(ObjectIdentifier(product))
        }
    }

    /// A pooling whose input is a convolution's kernel output read by nothing else runs in
    /// that kernel: the convolution's output never has to leave the cache to be pooled.
    private mutating func findPooledConvolution(_ node: Node) {
        guard case .pool2d = node.op, let input = node.inputs.first, input.realized == nil else { return }
        let id = ObjectIdentifier(input)
        guard boundary.contains(id), !fusedProducts.contains(id), consumers[id] == 1, !roots.contains(id) else { return }
        let product = epilogues[id] ?? input
        guard case .conv2d = product.op else { return }
        pooledConvolutions[ObjectIdentifier(node)] = input
        fusedProducts.insert(id)
    }

    /// Instructions a node contributes to its kernel (stopping at boundaries), counted up to
    /// just past the cap: all the caller needs to know is whether the group fits.
    private func groupSize(_ node: Node) -> Int {
        let limit = Planner.maxGroup * 4
        var size = 0
        var stack = [node]
        var isRoot = true
        while let n = stack.popLast() {
            size += 1
            if size > limit { return size }
            if !isRoot && (n.realized != nil || boundary.contains(ObjectIdentifier(n))) { continue }
            isRoot = false
            stack.append(contentsOf: n.inputs)
        }
        return size
    }

    /// Emits the kernel of a boundary node; nodes arrive in dependency order.
    private mutating func schedule(_ node: Node) {
        let id = ObjectIdentifier(node)
        guard boundary.contains(id), !fusedProducts.contains(id) else { return }
        kernels.append(makeKernel(node))
    }

    // MARK: kernel construction

    private func makeKernel(_ node: Node) -> Kernel {
        switch node.op {
        case let .reduce(op, axes):
            let input = node.inputs[0]
            let kept = input.shape.indices.filter { !axes.contains($0) }
            // Row mode when the innermost input axis is reduced: each output element is a
            // reduction over contiguous runs. Otherwise rows of the input are accumulated.
            let rowMode = axes.contains(input.shape.count - 1) || kept.isEmpty
            let order = rowMode ? kept + axes : axes + kept
            return Kernel(node: node, kind: .reduce(op, keptAxes: kept, reducedAxes: axes, rowMode: rowMode),
                          programs: [program(for: input, order: order)])
        case let .argReduce(minimum, axis):
            let input = node.inputs[0]
            let order = input.shape.indices.filter { $0 != axis } + [axis]
            return Kernel(node: node, kind: .argReduce(minimum: minimum, axis: axis), programs: [program(for: input, order: order)])
        case let .row(op, axis, hasWeight, hasBias):
            let input = node.inputs[0]
            let order = input.shape.indices.filter { $0 != axis } + [axis]
            let weight = hasWeight ? Program.Leaf(node: node.inputs[1], steps: []) : nil
            let bias = hasBias ? Program.Leaf(node: node.inputs[hasWeight ? 2 : 1], steps: []) : nil
            return Kernel(node: node, kind: .row(op, axis: axis, weight: weight, bias: bias),
                          programs: [program(for: input, order: order)])
        case let .gather(indices):
            return Kernel(node: node, kind: .gather(indices: indices, table: Program.Leaf(node: node.inputs[0], steps: [])),
                          programs: [])
        case let .concat(axis):
            return Kernel(node: node, kind: .concat(axis: axis), programs: node.inputs.map { program(for: $0, order: nil) })
        case let .pad(widths, value):
            return Kernel(node: node, kind: .pad(widths: widths, value: value), programs: [program(for: node.inputs[0], order: nil)])
        case .matmul:
            return Kernel(node: node, kind: .matmul(product: node),
                          programs: [program(for: node.inputs[0], order: nil), program(for: node.inputs[1], order: nil)])
        case .conv2d:
            return convKernel(node, product: node, epilogue: nil, pool: nil)
        case let .pool2d(p):
            if let convolved = pooledConvolutions[ObjectIdentifier(node)] {
                let product = epilogues[ObjectIdentifier(convolved)]
                return convKernel(node, product: product ?? convolved,
                                  epilogue: product == nil ? nil : program(for: convolved, order: nil, inlineRoot: true), pool: p)
            }
            return Kernel(node: node, kind: .pool2d(input: Program.Leaf(node: node.inputs[0], steps: [])), programs: [])
        case let .write(_, _, _, axis, _):
            return Kernel(node: node, kind: .write(axis: axis), programs: [program(for: node.inputs[0], order: nil)])
        case .convert:
            return Kernel(node: node, kind: .convert(from: node.inputs[0].dtype), programs: [program(for: node.inputs[0], order: nil)])
        case let .topK(k, axis, largest):
            let input = node.inputs[0]
            let order = input.shape.indices.filter { $0 != axis } + [axis]
            return Kernel(node: node, kind: .topK(k: k, axis: axis, largest: largest), programs: [program(for: input, order: order)])
        case let .take(axis, along):
            return Kernel(node: node, kind: .take(axis: axis, alongAxis: along, table: Program.Leaf(node: node.inputs[0], steps: []),
                                                  indices: Program.Leaf(node: node.inputs[1], steps: [])), programs: [])
        case let .attention(p):
            return Kernel(node: node, kind: .attention(p),
                          programs: node.inputs.map { program(for: $0, order: nil) })
        default:
            // An integer result that is no op of its own (a strided view of indices made
            // contiguous) is moved by the typed conversion loop, not the float programs.
            if node.dtype != .float32 {
                return Kernel(node: node, kind: .convert(from: node.dtype), programs: [program(for: node, order: nil, inlineRoot: true)])
            }
            if let product = epilogues[ObjectIdentifier(node)], case .conv2d = product.op {
                return convKernel(node, product: product, epilogue: program(for: node, order: nil, inlineRoot: true), pool: nil)
            }
            if let product = epilogues[ObjectIdentifier(node)] {
                return Kernel(node: node, kind: .matmul(product: product),
                              programs: [program(for: product.inputs[0], order: nil), program(for: product.inputs[1], order: nil),
                                         program(for: node, order: nil, inlineRoot: true)])
            }
            return Kernel(node: node, kind: .elementwise, programs: [program(for: node, order: nil, inlineRoot: true)])
        }
    }

    private func convKernel(_ node: Node, product: Node, epilogue: Program?, pool: Pool2DParameters?) -> Kernel {
        guard case let .conv2d(p) = product.op else { preconditionFailure() }
        let leaf = { (n: Node) in Program.Leaf(node: n, steps: []) }
        return Kernel(node: node, kind: .conv2d(product: product, x: leaf(product.inputs[0]), w: leaf(product.inputs[1]),
                                                bias: p.hasBias ? leaf(product.inputs[2]) : nil, pool: pool),
                      programs: epilogue.map { [$0] } ?? [])
    }

    /// The program computing `node` over its shape, or over its axes reordered by `order`.
    private func program(for node: Node, order: [Int]?, inlineRoot: Bool = false) -> Program {
        var emitter = Emitter(boundary: boundary)
        var steps: [MapStep] = []
        var space = node.shape
        if let order, order != Array(node.shape.indices) {
            space = order.map { node.shape[$0] }
            // kernel index i is the node's axis order[i]
            var map = Affine(offset: [Int](repeating: 0, count: order.count),
                             coef: [Int](repeating: 0, count: order.count * order.count), domainRank: order.count)
            for (i, axis) in order.enumerated() { map.coef[axis * order.count + i] = 1 }
            steps = [.affine(map)]
        }
        emitter.program.space = space
        _ = emitter.emit(node, steps: steps, isRoot: inlineRoot)
        emitter.program.assignSlots()
        return emitter.program
    }

    private struct Emitter {
        let boundary: Set<ObjectIdentifier>
        var program = Program(space: [])
        /// A node seen through the same chain of index maps is emitted once.
        struct Key: Hashable {
            let node: ObjectIdentifier
            let steps: [MapStep]
        }
        var memo: [Key: Int] = [:]

        mutating func push(_ instruction: Program.Instruction) -> Int {
            program.instructions.append(instruction)
            return program.instructions.count - 1
        }

        mutating func emit(_ node: Node, steps: [MapStep], isRoot: Bool = false) -> Int {
            // (This key was a string interpolating `steps`: reflection, 40% of planning time.)
            let key = Key(node: ObjectIdentifier(node), steps: steps)
            if let v = memo[key] { return v }
            let value: Int
            if !isRoot && (node.realized != nil || boundary.contains(ObjectIdentifier(node))) {
                program.leaves.append(Program.Leaf(node: node, steps: steps))
                value = push(.load(leaf: program.leaves.count - 1))
            } else {
                switch node.op {
                case .constant(let c): value = push(.constant(c))
                case .unary(let op): value = push(.unary(op, emit(node.inputs[0], steps: steps)))
                case .binary(let op):
                    let a = emit(node.inputs[0], steps: steps), b = emit(node.inputs[1], steps: steps)
                    value = push(.binary(op, a, b))
                case .select:
                    let c = emit(node.inputs[0], steps: steps), a = emit(node.inputs[1], steps: steps)
                    let b = emit(node.inputs[2], steps: steps)
                    value = push(.select(c, a, b))
                case .view(let step):
                    let input = node.inputs[0]
                    let next: MapStep = Affine.forView(step, outShape: node.shape, inShape: input.shape).map { .affine($0) }
                        ?? .reshape(from: node.shape, to: input.shape)
                    // Steps run from the kernel space down: this view's map applies after them.
                    value = emit(input, steps: composed(steps, next))
                case .buffer:
                    program.leaves.append(Program.Leaf(node: node, steps: steps))
                    value = push(.load(leaf: program.leaves.count - 1))
                default:
                    preconditionFailure("a boundary node was inlined")
                }
            }
            memo[key] = value
            return value
        }

        /// The chain `steps` followed by `next` (kernel space → ... → next's codomain).
        private func composed(_ steps: [MapStep], _ next: MapStep) -> [MapStep] {
            if case .affine(let n) = next, case .affine(let last)? = steps.last {
                return steps.dropLast() + [.affine(n.after(last))]
            }
            return steps + [next]
        }
    }
}

extension Kernel {
    var allLeaves: [Program.Leaf] {
        var leaves = programs.flatMap(\.leaves)
        switch kind {
        case let .row(_, _, w, b): leaves += [w, b].compactMap { $0 }
        case let .gather(_, table): leaves.append(table)
        case let .conv2d(_, x, w, bias, _): leaves += [x, w] + (bias.map { [$0] } ?? [])
        case let .pool2d(input): leaves.append(input)
        case let .take(_, _, table, indices): leaves += [table, indices]
        default: break
        }
        return leaves
    }
}
