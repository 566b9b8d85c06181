
/// A node of the lazy graph: an operation, its inputs, and the shape of its result.
///
/// Nodes are immutable once built, except for the cached result of an evaluation. A `.buffer`
/// node is data that already exists (a heap block or a mapped file region, seen through
/// strides); everything else is a recipe that runs only when a result is asked for.
///
/// Unchecked Sendable: `inputs` is a var only so that deinit can take a deep graph apart
/// without recursion; nothing else writes it, and deinit runs when no one else can read it.
final class Node: @unchecked Sendable {
    enum Op: Sendable {
        /// Existing data: storage, element offset, strides (0 = broadcast).
        case buffer(Storage, offset: Int, strides: [Int])
        /// One value, shape [] (broadcast by an expand view where used).
        case constant(Float)
        case unary(UnaryOp)
        case binary(BinaryOp)
        /// where(condition, a, b); all three inputs have this node's shape.
        case select
        /// A movement of a lazy input: free, folded into the index math of the consumer.
        case view(ViewStep)
        /// Result keeps reduced axes as 1.
        case reduce(ReduceOp, axes: [Int])
        /// Index of the maximum (or minimum) along one axis, kept as 1, as float.
        case argReduce(minimum: Bool, axis: Int)
        /// inputs: x, then weight and bias when present (shape [row length]).
        case row(RowOp, axis: Int, hasWeight: Bool, hasBias: Bool)
        /// Rows of a table (input 0, shape [V, ...]) picked by index: shape indexShape + [...].
        case gather(indices: [Int])
        case concat(axis: Int)
        case pad(widths: [Int], value: Float)  // before/after per axis, flattened
        /// inputs: a [batch..., M, K] and b [batch..., K, N], batch axes already broadcast.
        case matmul
        /// inputs: x [N, C, H, W], w [O, C/groups, kh, kw], then bias [O] when present.
        case conv2d(Conv2DParameters)
        /// input: x [N, C, H, W].
        case pool2d(Pool2DParameters)
        /// inputs: q [B, H, T, d], k [B, Hk, S, d], v [B, Hk, S, dv] (Hk divides H: query head
        /// h reads key head h / (H / Hk)), then an additive mask already expanded to
        /// [B, H, T, S] when present. Shape [B, T, H, dv]: the heads are written next to each
        /// other, the order a model merges them in. With `segments` (B = 1, T = S = their
        /// sum), the tokens are several sequences packed one after another: each attends only
        /// to its own, and the mask, [1, H, L, L] for the longest length L, is read from its
        /// corner for each sequence.
        case attention(AttentionParameters)
        /// Writes input 0 into existing storage in place: the node is the whole target view
        /// (storage, offset, strides, this node's shape), and the input covers it except
        /// along `axis`, where it lands at `start`. An optional input 1 is a write that must
        /// run first (an earlier write into the same cache not yet evaluated); it is not read.
        /// The result is the target view itself: nothing is allocated. `start` is read when
        /// the kernel runs, so a cached plan serves every position, and a replayed graph's
        /// start can be a counter that moves between runs.
        case write(Storage, offset: Int, strides: [Int], axis: Int, start: WritePosition)
        /// The input's elements in this node's dtype (int to float to compute with them, float
        /// to int for indices, truncating toward zero as NumPy's astype does).
        case convert
        /// Indices (int64) of the k largest (or smallest) elements along `axis`, in order,
        /// ties to the lower index; NaN counts as the largest, as in PyTorch.
        case topK(k: Int, axis: Int, largest: Bool)
        /// inputs: a table and an int32/int64 index tensor. `alongAxis` false is NumPy's take
        /// (shape: table[..<axis] + indices + table[axis+1...]); true is take_along_axis
        /// (PyTorch's gather: shape of the indices, same rank as the table).
        case take(axis: Int, alongAxis: Bool)
    }

    /// Whether the op reads its inputs as float32 values (so integer inputs are widened first).
    private static func computesInFloat(_ op: Op) -> Bool {
        switch op {
        case .buffer, .view, .convert, .take: false
        default: true
        }
    }

    let op: Op
    private(set) var inputs: [Node]
    let shape: [Int]
    /// Element type of the result: float32 but for buffers of indices, conversions to them,
    /// and the ops that compute indices (argmax, topK) or move them (views, take).
    let dtype: DType
    /// The evaluated result of a lazy node, kept so that asking twice computes once; guarded
    /// by the node's striped lock.
    private var cached: Node?
    /// Whether a kernel has computed this node as an intermediate of some plan (whose buffer
    /// was then released); guarded by the same lock.
    private var computedBefore = false

    /// `dtype` is used by buffers and conversions; every other op derives its own. Integer
    /// inputs of an op that computes in float32 are widened by a conversion node, so no
    /// arithmetic kernel ever reads an integer.
    init(_ op: Op, _ inputs: [Node], shape: [Int], dtype: DType = .float32) {
        self.op = op
        self.shape = shape
        switch op {
        case .buffer, .convert: self.dtype = dtype
        case .view: self.dtype = inputs[0].dtype
        case .take: self.dtype = inputs[0].dtype.isCodedWeight ? .float32 : inputs[0].dtype
        case .argReduce, .topK: self.dtype = .int64
        default: self.dtype = .float32
        }
        if Node.computesInFloat(op) {
            self.inputs = inputs.enumerated().map { i, input in
                if input.dtype == .float32 { return input }
                // A coded weight as a product's right operand, or a coded table whose rows are
                // gathered, is read as stored.
                if case .matmul = op, i == 1, Node.isCodedWeightOperand(input) { return input }
                if case .gather = op, i == 0, Node.isCodedTable(input) { return input }
                return Node(.convert, [input], shape: input.shape, dtype: .float32)
            }
        } else if case let .take(axis, along) = op, inputs[0].dtype.isCodedWeight,
                  !(axis == 0 && !along && Node.isCodedTable(inputs[0])) {
            // take moves elements in their own type, and a block's elements are not bytes
            // apart; only whole rows of a coded table (an embedding lookup) are decoded as
            // they are picked.
            self.inputs = [Node(.convert, [inputs[0]], shape: inputs[0].shape, dtype: .float32)] + inputs.dropFirst()
        } else {
            self.inputs = inputs
        }
    }

    /// Releasing the last reference to the root of a 100,000-op chain would otherwise release
    /// each input from inside its consumer's deinit, one stack frame per node, and overflow
    /// the stack. Inputs only this node holds are unlinked here and released one at a time.
    deinit {
        guard !inputs.isEmpty else { return }
        var pending = inputs
        inputs = []
        while var node = pending.popLast() {
            if isKnownUniquelyReferenced(&node) {
                pending.append(contentsOf: node.inputs)
                node.inputs = []
            }
        }
    }

    var isBuffer: Bool { if case .buffer = op { true } else { false } }

    /// Whether this is a buffer of a coded weight whose runs along `axis` are its stored runs:
    /// unit stride along it, its length a whole number of blocks, and every other stride and
    /// the offset whole blocks, so each run starts at a block and can be decoded as stored.
    static func keepsCodedRuns(_ node: Node, along axis: Int) -> Bool {
        guard node.dtype.isCodedWeight, case let .buffer(_, offset, strides) = node.op,
              axis >= 0, axis < node.shape.count else { return false }
        let block = node.dtype.blockLength
        return strides[axis] == 1 && node.shape[axis] % block == 0 && offset % block == 0
            && strides.indices.allSatisfy { $0 == axis || strides[$0] % block == 0 }
    }

    /// A gather reads rows of a coded table as stored when each row is a stored run.
    static func isCodedTable(_ node: Node) -> Bool { keepsCodedRuns(node, along: node.shape.count - 1) }

    /// A matmul reads its [batch..., K, N] right operand as stored when it is a coded weight
    /// W [N, K] seen transposed, each row of W a stored run along K and the rows apart by at
    /// least K.
    static func isCodedWeightOperand(_ node: Node) -> Bool {
        let rank = node.shape.count
        guard rank >= 2, keepsCodedRuns(node, along: rank - 2), case let .buffer(_, _, strides) = node.op else { return false }
        return strides[rank - 1] >= node.shape[rank - 2]
    }

    /// Whether the op is always a kernel of its own, writing its own buffer (or, for a write,
    /// its target): what the planner never fuses into a consumer, and what a view above it
    /// can read as a buffer.
    var isKernelBoundary: Bool {
        switch op {
        case .reduce, .argReduce, .row, .gather, .concat, .pad, .matmul, .conv2d, .pool2d, .attention, .write, .convert, .topK, .take:
            true
        case .buffer, .constant, .unary, .binary, .select, .view:
            false
        }
    }

    /// Every node reachable from `roots`, each once, inputs before the nodes that read them, in
    /// the order a recursive depth-first walk would list them. Nodes for which `enter` is
    /// false are listed but not entered. Iterative, so a graph 100,000 ops deep needs no deep
    /// stack: the planner's passes walk this list (the plan cache's fingerprint has its own
    /// fused walk, since it runs on every evaluation).
    static func postOrder(_ roots: [Node], enter: (Node) -> Bool) -> [Node] {
        var order: [Node] = []
        var seen = Set<ObjectIdentifier>()
        var stack: [(node: Node, next: Int, enters: Bool)] = []
        for root in roots where seen.insert(ObjectIdentifier(root)).inserted {
            stack.append((root, 0, enter(root)))
            while let top = stack.last {
                if top.enters && top.next < top.node.inputs.count {
                    stack[stack.count - 1].next += 1
                    let input = top.node.inputs[top.next]
                    if seen.insert(ObjectIdentifier(input)).inserted { stack.append((input, 0, enter(input))) }
                } else {
                    stack.removeLast()
                    order.append(top.node)
                }
            }
        }
        return order
    }

    var result: Node? {
        get { StripedLocks.withLock(for: self) { cached } }
    }

    func setResult(_ node: Node?) { StripedLocks.withLock(for: self) { cached = node } }

    /// Records that a kernel computed this node; true when one had already done so before.
    func markComputed() -> Bool {
        StripedLocks.withLock(for: self) {
            defer { computedBefore = true }
            return computedBefore
        }
    }

    var wasComputedBefore: Bool { StripedLocks.withLock(for: self) { computedBefore } }

    /// The buffer this node is or has been evaluated into.
    var realized: Node? { isBuffer ? self : result }

    var elementCount: Int { shape.reduce(1, *) }
}

/// A movement applied to a lazy node.
enum ViewStep: Sendable, Equatable {
    case permute([Int])
    /// Broadcast from the input shape to the node shape (leading axes may be added).
    case expand
    case slice(axis: Int, start: Int, step: Int)
    /// Row-major reinterpretation of the input shape as the node shape.
    case reshape
}

/// Geometry of a 2-D convolution (PyTorch's Conv2d, NCHW input, OIHW weights).
public struct Conv2DParameters: Sendable, Equatable {
    public var stride: (Int, Int)
    public var padding: (Int, Int)
    public var dilation: (Int, Int)
    public var groups: Int
    public var hasBias: Bool

    public static func == (a: Self, b: Self) -> Bool {
        a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation && a.groups == b.groups && a.hasBias == b.hasBias
    }
}

/// What an attention kernel computes besides softmax(q·kᵀ·scale + mask)·v.
public struct AttentionParameters: Sendable, Equatable {
    public var scale: Float
    public var hasMask: Bool
    /// Query i of T sees keys 0 ... S - T + i (the last T positions of a causal sequence whose
    /// first S - T keys are cached).
    public var causal: Bool
    public var segments: [Int]?
    /// Only keys 0 ..< keyLength of k and v are used (a preallocated cache filled that far).
    /// Read when the kernel runs: plans do not depend on its value.
    public var keyLength: Int?
}

/// Geometry of a 2-D pooling window.
public struct Pool2DParameters: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case max, average }
    public var kind: Kind
    public var kernel: (Int, Int)
    public var stride: (Int, Int)
    public var padding: (Int, Int)

    public static func == (a: Self, b: Self) -> Bool {
        a.kind == b.kind && a.kernel == b.kernel && a.stride == b.stride && a.padding == b.padding
    }
}
