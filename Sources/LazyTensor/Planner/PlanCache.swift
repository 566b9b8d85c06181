#if canImport(Glibc)
import Glibc
#endif

/// Plans reused across graphs of the same structure.
///
/// A model builds a new graph on every call, and for the same input shape it is the same graph
/// but for its nodes' identities and the values in its buffers. Planning it costs more than
/// running it at small sizes (0.34 of 3.5 ms for MiniLM at 1 x 16), so plans are kept, keyed
/// by a fingerprint of everything planning reads: each node's operation with its parameters,
/// its shape, its inputs (by first-visit number, so sharing is part of the key), and for an
/// evaluated node, its strides (it is a leaf then, and roots that are buffers are copied or
/// not by their strides). Buffer contents and gather indices are not part of the key: they
/// are read when the kernels run, from the new graph's nodes, which the cached kernels are
/// rebound to.
enum PlanCache {
    /// Enough for the handful of shapes a model sees (batch sizes, sequence lengths); the
    /// oldest plans go first.
    static let capacity = 64

    private struct Entry: Sendable {
        let kernels: [Kernel]
        /// The first-visit number of each stand-in node the kernels name.
        let numbering: [ObjectIdentifier: Int]
    }

    private static let entries: Locked<(plans: [Fingerprint: Entry], order: [Fingerprint])> = {
        // Under tools/sanitize, the cache is emptied before LeakSanitizer's exit check: cached
        // plans hold shape arrays through Swift enum payloads whose pointers carry tag bits,
        // which LSan cannot follow, so it would report them as leaked although they are not.
        if getenv("WPACK_SANITIZER") != nil { atexit { PlanCache.removeAll() } }
        return Locked(([:], []))
    }()

    /// Forgets every cached plan (for tests and long-idle servers; the next call of each shape
    /// plans again).
    static func removeAll() {
        let dropped = entries.withLock { state -> [Fingerprint: Entry] in
            let all = state.plans
            state = ([:], [])
            return all
        }
        _ = dropped  // released here, outside the lock
    }

    struct Fingerprint: Hashable, Sendable {
        let words: [Int]
    }

    /// The kernels for `roots`: a cached plan rebound to these nodes, or a new plan.
    static func kernels(for roots: [Node]) -> [Kernel] {
        var walk = Walk()
        walk.visitAll(roots)
        walk.words.append(-1)
        for root in roots { walk.words.append(walk.number[ObjectIdentifier(root)]!) }
        let key = Fingerprint(words: walk.words)
        if let entry = entries.withLock({ $0.plans[key] }) {
            return entry.kernels.map { rebind($0, from: entry.numbering, to: walk.nodes) }
        }
        Stats.recordPlan()
        let kernels = Planner(roots: roots).kernels
        // The cached copy names stand-in nodes, not this graph's: holding this graph's nodes
        // would keep its inputs and results alive for as long as the plan is cached.
        let standIns = walk.nodes.map { Node(.constant(0), [], shape: $0.shape) }
        var numbering: [ObjectIdentifier: Int] = [:]
        for (i, n) in standIns.enumerated() { numbering[ObjectIdentifier(n)] = i }
        let entry = Entry(kernels: kernels.map { rebind($0, from: walk.number, to: standIns) }, numbering: numbering)
        entries.withLock { state in
            if state.plans.updateValue(entry, forKey: key) == nil { state.order.append(key) }
            while state.order.count > capacity { state.plans[state.order.removeFirst()] = nil }
        }
        return kernels
    }


    /// Numbers nodes in first-visit order and writes the fingerprint words.
    private struct Walk {
        var number: [ObjectIdentifier: Int] = [:]
        var nodes: [Node] = []
        var words: [Int] = []

        /// Numbers every node reachable from `roots`, inputs first, without recursion (a graph
        /// may be 100,000 nodes deep). This runs on every evaluation, cached plan or not, so
        /// it is Node.postOrder fused with the numbering: one dictionary serves as the visited
        /// set, and each node's cached result is read once.
        mutating func visitAll(_ roots: [Node]) {
            var stack: [(node: Node, evaluated: Node?, next: Int)] = []
            let entered = -1
            for root in roots where number[ObjectIdentifier(root)] == nil {
                number[ObjectIdentifier(root)] = entered
                stack.append((root, root.realized, 0))
                while let top = stack.last {
                    if top.evaluated == nil && top.next < top.node.inputs.count {
                        stack[stack.count - 1].next += 1
                        let input = top.node.inputs[top.next]
                        if number[ObjectIdentifier(input)] == nil {
                            number[ObjectIdentifier(input)] = entered
                            stack.append((input, input.realized, 0))
                        }
                    } else {
                        stack.removeLast()
                        visit(top.node, evaluated: top.evaluated)
                    }
                }
            }
        }

        /// Numbers `node`, whose inputs (if it is lazy) have been numbered already.
        private mutating func visit(_ node: Node, evaluated: Node?) {
            let id = ObjectIdentifier(node)
            number[id] = nodes.count
            nodes.append(node)
            words.append(-2)
            words.append(Int(node.dtype.rawValue))
            words += node.shape
            if let evaluated, case let .buffer(_, _, strides) = evaluated.op {
                words.append(-3)
                words += strides
                return
            }
            words.append(-4)
            for input in node.inputs { words.append(number[ObjectIdentifier(input)]!) }
            Walk.encode(node.op, into: &words)
        }

        static func encode(_ op: Node.Op, into w: inout [Int]) {
            switch op {
            case .buffer: w.append(1)
            case .constant(let c): w += [2, Int(c.bitPattern)]
            case .unary(let u): w += [3, Int(u.rawValue)]
            case .binary(let b): w += [4, Int(b.rawValue)]
            case .select: w.append(5)
            case .view(let step):
                switch step {
                case .permute(let order): w += [6, order.count] + order
                case .expand: w.append(7)
                case let .slice(axis, start, step): w += [8, axis, start, step]
                case .reshape: w.append(9)
                }
            case let .reduce(op, axes): w += [10, Int(op.code), op == .mean ? 1 : 0, axes.count] + axes
            case let .argReduce(minimum, axis): w += [11, minimum ? 1 : 0, axis]
            case let .row(op, axis, hasWeight, hasBias):
                w += [12, axis, hasWeight ? 1 : 0, hasBias ? 1 : 0]
                switch op {
                case .softmax: w.append(0)
                case .logSoftmax: w.append(1)
                case .layerNorm(let eps): w += [2, Int(eps.bitPattern)]
                case .rmsNorm(let eps): w += [3, Int(eps.bitPattern)]
                }
            case .gather(let indices): w += [13, indices.count]  // the values are read at run time
            case .concat(let axis): w += [14, axis]
            case let .pad(widths, value): w += [15, Int(value.bitPattern), widths.count] + widths
            case .matmul: w.append(16)
            case .conv2d(let p):
                w += [17, p.stride.0, p.stride.1, p.padding.0, p.padding.1, p.dilation.0, p.dilation.1, p.groups, p.hasBias ? 1 : 0]
            case .pool2d(let p):
                w += [18, p.kind == .max ? 0 : 1, p.kernel.0, p.kernel.1, p.stride.0, p.stride.1, p.padding.0, p.padding.1]
            case let .attention(p):
                w += [19, Int(p.scale.bitPattern), p.hasMask ? 1 : 0, p.causal ? 1 : 0, p.keyLength == nil ? 0 : 1,
                      p.segments?.count ?? -1] + (p.segments ?? [])
            case .convert: w.append(21)
            case let .topK(k, axis, largest): w += [22, k, axis, largest ? 1 : 0]
            case let .take(axis, along): w += [23, axis, along ? 1 : 0]
            case let .write(_, _, strides, axis, _):
                // The target and the position are read at run time, from the new graph's node.
                w += [20, axis, strides.count] + strides
            }
        }
    }

    /// A cached kernel with every node it names replaced by the node of the same number in
    /// the new graph; a gather takes the new graph's indices.
    private static func rebind(_ kernel: Kernel, from numbering: [ObjectIdentifier: Int], to nodes: [Node]) -> Kernel {
        func node(_ old: Node) -> Node { nodes[numbering[ObjectIdentifier(old)]!] }
        func leaf(_ old: Program.Leaf) -> Program.Leaf { Program.Leaf(node: node(old.node), steps: old.steps) }
        let kind: Kernel.Kind
        switch kernel.kind {
        case .elementwise, .reduce, .argReduce, .concat, .pad, .attention, .write, .convert, .topK: kind = kernel.kind
        case let .take(axis, along, table, indices): kind = .take(axis: axis, alongAxis: along, table: leaf(table), indices: leaf(indices))
        case let .row(op, axis, weight, bias): kind = .row(op, axis: axis, weight: weight.map(leaf), bias: bias.map(leaf))
        case let .gather(_, table):
            // The new graph's node is a gather too (the op is part of the key); a stand-in
            // keeps no indices.
            if case let .gather(indices) = node(kernel.node).op {
                kind = .gather(indices: indices, table: leaf(table))
            } else {
                kind = .gather(indices: [], table: leaf(table))
            }
        case .matmul(let product): kind = .matmul(product: node(product))
        case let .conv2d(product, x, w, bias, pool):
            kind = .conv2d(product: node(product), x: leaf(x), w: leaf(w), bias: bias.map(leaf), pool: pool)
        case .pool2d(let input): kind = .pool2d(input: leaf(input))
        }
        let programs = kernel.programs.map { p in
            var q = p
            q.leaves = p.leaves.map(leaf)
            return q
        }
        return Kernel(node: node(kernel.node), kind: kind, programs: programs)
    }
}
