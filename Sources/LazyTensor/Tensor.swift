#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An n-dimensional float32 array.
///
/// A tensor is a value holding a node of a lazy graph. When the node is a buffer, the tensor is
/// a view (storage, element offset, shape, strides in elements) and views of it are computed
/// on the spot, sharing the storage. Any other operation only records what to compute;
/// nothing runs until a result is needed (`materialized()`, `scalars`, `storage`).
public struct Tensor: Sendable {
    let node: Node

    init(node: Node) { self.node = node }

    /// Largest rank the library supports (and the .wpk format stores).
    public static let maxRank = 8

    /// A view into existing storage, its offset and strides counted in elements of `dtype`
    /// (float32, or int32 / int64 for indices). The caller guarantees every index lies inside.
    public init(storage: Storage, offset: Int = 0, shape: [Int], strides: [Int]? = nil, dtype: DType = .float32) {
        let strides = strides ?? Tensor.contiguousStrides(for: shape)
        do {
            try require(shape.count <= Tensor.maxRank, "tensor", [shape], "rank \(shape.count) exceeds \(Tensor.maxRank)")
            try require(shape.allSatisfy { $0 >= 0 }, "tensor", [shape], "a dimension is negative")
            try require(strides.count == shape.count, "tensor", [shape], "\(strides.count) strides for rank \(shape.count)")
            try require(dtype.isViewable, "tensor", [shape], "\(dtype) is not a tensor element type (float32, int32, int64) or a weight coding (float16, bfloat16, q8_0, q4_0, q4_1)")
        } catch {
            self = Tensor.report(error, shape: shape)
            return
        }
        let view = Node(.buffer(storage, offset: offset, strides: strides), [], shape: shape, dtype: dtype)
        if dtype.isBlockQuantized && !Node.keepsCodedRuns(view, along: shape.count - 1) {
            self = Tensor.report(TensorError(op: "tensor", shapes: [shape], reason: "\(dtype) is stored in whole blocks of \(dtype.blockLength) along the last axis"), shape: shape)
            return
        }
        node = view
    }

    /// A new contiguous tensor holding a copy of `scalars` (counted as a user-requested copy).
    public init(shape: [Int], scalars: [Float]) {
        let count = Layout.count(shape) ?? -1
        guard count == scalars.count, shape.allSatisfy({ $0 >= 0 }), shape.count <= Tensor.maxRank else {
            self = Tensor.report(TensorError(op: "tensor", shapes: [shape], reason: "\(scalars.count) scalars given"), shape: shape)
            return
        }
        let storage = Storage(allocatingByteCount: count * MemoryLayout<Float>.stride)
        scalars.withUnsafeBytes { if count > 0 { storage.baseAddress.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        Stats.recordCopy(bytes: count * MemoryLayout<Float>.stride, reason: .userRequest)
        self.init(storage: storage, shape: shape)
    }

    /// A new contiguous integer tensor (int64 or int32) holding `integers`: token ids, indices.
    public init(shape: [Int], integers: [Int], dtype: DType = .int64) {
        let count = shape.reduce(1, *)
        let fits = dtype == .int64 || integers.allSatisfy { Int32(exactly: $0) != nil }
        guard count == integers.count, shape.allSatisfy({ $0 >= 0 }), shape.count <= Tensor.maxRank,
              dtype == .int64 || dtype == .int32, fits else {
            let reason = dtype != .int64 && dtype != .int32 ? "integers are stored as int32 or int64, not \(dtype)"
                : !fits ? "a value does not fit int32" : "\(integers.count) integers given"
            self = Tensor.report(TensorError(op: "tensor", shapes: [shape], reason: reason), shape: shape)
            return
        }
        let storage = Storage(allocatingByteCount: count * dtype.byteSize)
        for (i, v) in integers.enumerated() {
            if dtype == .int64 { storage.baseAddress.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) } else {
                storage.baseAddress.storeBytes(of: Int32(v), toByteOffset: i * 4, as: Int32.self)
            }
        }
        Stats.recordCopy(bytes: count * dtype.byteSize, reason: .userRequest)
        self.init(storage: storage, shape: shape, dtype: dtype)
    }

    /// A 0-d tensor holding one value.
    public init(_ value: Float) { self.init(shape: [], scalars: [value]) }

    public static func zeros(shape: [Int]) -> Tensor { full(shape: shape, value: 0) }
    public static func ones(shape: [Int]) -> Tensor { full(shape: shape, value: 1) }

    public static func full(shape: [Int], value: Float) -> Tensor {
        guard let count = validCount(shape, op: "full") else { return standIn(shape: shape) }
        let storage = Storage(allocatingByteCount: count * MemoryLayout<Float>.stride)
        storage.baseAddress.initializeMemory(as: Float.self, repeating: value, count: count)
        return Tensor(storage: storage, shape: shape)
    }

    /// Uninitialised memory, for outputs the caller fills.
    public static func empty(shape: [Int]) -> Tensor {
        guard let count = validCount(shape, op: "empty") else { return standIn(shape: shape) }
        return Tensor(storage: Storage(allocatingByteCount: count * MemoryLayout<Float>.stride), shape: shape)
    }

    /// The element count of a shape a new tensor is made with, or nil after reporting why not.
    static func validCount(_ shape: [Int], op: String) -> Int? {
        guard shape.allSatisfy({ $0 >= 0 }), shape.count <= maxRank,
              let count = Layout.count(shape), count.multipliedReportingOverflow(by: 8).overflow == false else {
            reportValue(TensorError(op: op, shapes: [shape], reason: "not a valid shape for a new tensor (negative, too many axes, or too many elements)"))
            return nil
        }
        return count
    }

    /// Standard normal samples from a seeded generator (same seed, same numbers, everywhere).
    public static func randn(shape: [Int], seed: UInt64 = 0) -> Tensor {
        guard let count = validCount(shape, op: "randn") else { return standIn(shape: shape) }
        let storage = Storage(allocatingByteCount: count * MemoryLayout<Float>.stride)
        let out = storage.baseAddress.assumingMemoryBound(to: Float.self)
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        func next() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return (Double((z ^ (z >> 31)) >> 11) + 0.5) / 9_007_199_254_740_992
        }
        var i = 0
        while i < count {
            // Box-Muller: two uniforms give two normals.
            let r = (-2 * Glibc.log(next())).squareRoot(), theta = 2 * Double.pi * next()
            out[i] = Float(r * Glibc.cos(theta)); i += 1
            if i < count { out[i] = Float(r * Glibc.sin(theta)); i += 1 }
        }
        return Tensor(storage: storage, shape: shape)
    }

    public var shape: [Int] { node.shape }
    /// The element type: float32, or int32 / int64 for indices and ids.
    public var dtype: DType { node.dtype }
    public var rank: Int { node.shape.count }
    public var scalarCount: Int { node.elementCount }

    /// Whether the tensor has bytes already (a view of a buffer or an evaluated result).
    public var isRealized: Bool { node.realized != nil }

    /// The buffer view, evaluating the graph first if needed.
    var bufferView: (storage: Storage, offset: Int, strides: [Int]) {
        let n = node.realized ?? materialized().node
        guard case let .buffer(storage, offset, strides) = n.op else { preconditionFailure("evaluation gave no buffer") }
        return (storage, offset, strides)
    }

    /// The storage behind the tensor (evaluating it if lazy).
    public var storage: Storage { bufferView.storage }
    /// Element offset of index 0 in the storage (evaluating if lazy).
    public var offset: Int { bufferView.offset }

    /// Strides in elements; 0 marks a broadcast axis. For a lazy tensor these are the strides of
    /// the contiguous result evaluation will produce.
    public var strides: [Int] {
        if let n = node.realized, case let .buffer(_, _, strides) = n.op { return strides }
        return Tensor.contiguousStrides(for: shape)
    }

    public static func contiguousStrides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in shape.indices.reversed() {
            strides[axis] = running
            running *= Swift.max(shape[axis], 1)
        }
        return strides
    }

    /// Row-major and gap-free: the layout every kernel and BLAS call consumes directly.
    /// False for a lazy tensor (it has no layout until evaluated).
    public var isContiguous: Bool {
        guard let n = node.realized, case let .buffer(_, _, strides) = n.op else { return false }
        return Layout.isRowMajor(shape: shape, strides: strides)
    }

    /// Column-major (Fortran order) and gap-free.
    public var isColumnContiguous: Bool {
        guard let n = node.realized, case let .buffer(_, _, strides) = n.op else { return false }
        return Layout.isRowMajor(shape: shape.reversed(), strides: strides.reversed())
    }

    /// Every element has its own address and the elements fill a dense block, in any axis
    /// order (a permutation of a contiguous tensor is gap-free, a broadcast or a step is not).
    public var isGapFree: Bool {
        guard let n = node.realized, case let .buffer(_, _, strides) = n.op else { return false }
        let order = shape.indices.filter { shape[$0] != 1 }.sorted { Swift.abs(strides[$0]) < Swift.abs(strides[$1]) }
        var expected = 1
        for axis in order {
            if Swift.abs(strides[axis]) != expected { return scalarCount == 0 }
            expected *= shape[axis]
        }
        return true
    }

    /// Whether both tensors are views of the same underlying buffer (mapped file or heap block).
    /// Lazy tensors have no buffer and share nothing.
    public func sharesStorage(with other: Tensor) -> Bool {
        guard let a = node.realized, let b = other.node.realized,
              case let .buffer(s1, _, _) = a.op, case let .buffer(s2, _, _) = b.op else { return false }
        return s1 === s2
    }

    /// Address of the element at index 0 (offset applied), evaluating if lazy. Keep the tensor
    /// alive (`withExtendedLifetime`) while using the pointer.
    public var baseAddress: UnsafePointer<Float> {
        if dtype != .float32 {
            Tensor.reportValue(TensorError(op: "baseAddress", shapes: [shape], reason: "the tensor holds \(dtype), not float32"))
        }
        let view = bufferView
        return UnsafePointer(view.storage.baseAddress.assumingMemoryBound(to: Float.self) + view.offset)
    }

    /// The elements in row-major order, evaluating if lazy. Reading them out is the caller's
    /// copy into a Swift array, not a library copy.
    public var scalars: [Float] {
        let count = scalarCount
        if count == 0 { return [] }
        if dtype.isCodedWeight { return converted(to: .float32).scalars }
        if dtype != .float32 { return integers.map { Float($0) } }
        let view = bufferView
        return withExtendedLifetime(view.storage) {
            let base = UnsafePointer(view.storage.baseAddress.assumingMemoryBound(to: Float.self)) + view.offset
            if Layout.isRowMajor(shape: shape, strides: view.strides) {
                return Array(UnsafeBufferPointer(start: base, count: count))
            }
            var out = [Float](); out.reserveCapacity(count)
            Layout.forEachOffset(shape: shape, strides: view.strides) { out.append(base[$0]) }
            return out
        }
    }

    /// The elements of an int32 or int64 tensor in row-major order, exactly (evaluating if
    /// lazy). A float tensor has no integers: convert it first (`converted(to: .int64)`).
    public var integers: [Int] {
        guard dtype == .int32 || dtype == .int64 else {
            Tensor.reportValue(TensorError(op: "integers", shapes: [shape], reason: "the tensor holds \(dtype); convert it first"))
            return [Int](repeating: 0, count: scalarCount)
        }
        if scalarCount == 0 { return [] }
        let view = bufferView
        return withExtendedLifetime(view.storage) {
            var out: [Int] = []
            out.reserveCapacity(scalarCount)
            Layout.forEachOffset(shape: shape, strides: view.strides) { out.append(Executor.loadIndex(UnsafeRawPointer(view.storage.baseAddress), dtype, view.offset + $0)) }
            return out
        }
    }

    /// The single value of a one-element tensor.
    public var item: Float {
        guard scalarCount == 1 else {
            Tensor.reportValue(TensorError(op: "item", shapes: [shape], reason: "needs exactly one element"))
            return .nan
        }
        return scalars[0]
    }
}

/// Stride arithmetic shared by tensors, the planner and the kernels.
enum Layout {
    static func isRowMajor(shape: [Int], strides: [Int]) -> Bool {
        var expected = 1
        for axis in shape.indices.reversed() where shape[axis] != 1 {
            if strides[axis] != expected { return shape.contains(0) }
            expected *= shape[axis]
        }
        return true
    }

    /// The number of elements of `shape`, or nil when it does not fit an Int.
    static func count(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = p
        }
        return n
    }

    /// Calls `body` with every multi-index of `shape`, in row-major order.
    static func forEachIndex(_ shape: [Int], _ body: ([Int]) -> Void) {
        if shape.contains(0) { return }
        var index = [Int](repeating: 0, count: shape.count)
        while true {
            body(index)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
            if axis < 0 { return }
        }
    }

    /// Calls `body` with the element offset of every index, in row-major order.
    static func forEachOffset(shape: [Int], strides: [Int], _ body: (Int) -> Void) {
        let count = shape.reduce(1, *)
        if count == 0 { return }
        let rank = shape.count
        var index = [Int](repeating: 0, count: rank)
        var position = 0
        for _ in 0..<count {
            body(position)
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                position += strides[axis]
                if index[axis] < shape[axis] { break }
                position -= strides[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// Strides for viewing (shape, strides) as `newShape` without moving data, or nil when the
    /// layout cannot express it (NumPy's attempt_nocopy_reshape, with size-1 axes free).
    static func reshapedStrides(shape: [Int], strides: [Int], to newShape: [Int]) -> [Int]? {
        if shape.reduce(1, *) == 0 { return Tensor.contiguousStrides(for: newShape) }
        // Drop size-1 axes: they place no constraint.
        let old = shape.indices.filter { shape[$0] != 1 }
        let oldShape = old.map { shape[$0] }, oldStrides = old.map { strides[$0] }
        var result = [Int](repeating: 0, count: newShape.count)
        var oi = 0
        let newNonUnit = newShape.indices.filter { newShape[$0] != 1 }
        var nj = 0
        while oi < oldShape.count && nj < newNonUnit.count {
            // Grow a group of old axes and a group of new axes until their sizes agree.
            var op = oldShape[oi], np = newShape[newNonUnit[nj]]
            var oEnd = oi + 1, nEnd = nj + 1
            while op != np {
                if op < np {
                    guard oEnd < oldShape.count else { return nil }
                    op *= oldShape[oEnd]; oEnd += 1
                } else {
                    guard nEnd < newNonUnit.count else { return nil }
                    np *= newShape[newNonUnit[nEnd]]; nEnd += 1
                }
            }
            // The old group must be one contiguous run to be re-split freely.
            for k in oi..<(oEnd - 1) where oldStrides[k] != oldStrides[k + 1] * oldShape[k + 1] { return nil }
            var run = oldStrides[oEnd - 1]
            for k in stride(from: nEnd - 1, through: nj, by: -1) {
                result[newNonUnit[k]] = run
                run *= newShape[newNonUnit[k]]
            }
            oi = oEnd; nj = nEnd
        }
        guard oi == oldShape.count && nj == newNonUnit.count else { return nil }
        // Size-1 axes get the stride they would have in a contiguous layout (any value works).
        for axis in newShape.indices where newShape[axis] == 1 {
            var s = 1
            for later in (axis + 1)..<newShape.count { s *= Swift.max(newShape[later], 1) }
            result[axis] = s
        }
        return result
    }
}
