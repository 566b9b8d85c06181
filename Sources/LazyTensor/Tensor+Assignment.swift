/// Writing into existing storage, in place: the one way the engine mutates memory. A write is a
/// kernel like any other (its value's elementwise chain runs inside it), but instead of a fresh
/// buffer its result is the target view, so a cache grows by its new rows only.
extension Tensor {
    /// Writes `value` (broadcast to this view's shape) into the elements this view covers, now.
    /// This tensor must be a view of heap storage (a slice of `Tensor.zeros`, say): every
    /// other view of that storage sees the new values, as with a NumPy view. Lazy graphs read
    /// storage when they are evaluated, so one built earlier and evaluated later sees them too.
    public func assign(_ value: Tensor) {
        do {
            let target = try writableTarget(op: "assign", valueShape: value.shape)
            var source = value.expanded(to: shape)
            if value.reads(target.storage) {
                // The value reads the memory it is about to overwrite: evaluate it elsewhere first.
                source = Tensor(shape: shape, scalars: source.scalars)
            }
            let node = Node(.write(target.storage, offset: target.offset, strides: target.strides, axis: 0, start: .fixed(0)),
                            [source.node], shape: shape)
            _ = Tensor(node: node).materialized()
        } catch {
            Tensor.reportValue(error)
        }
    }

    /// Writes `integers` (one per element, in row-major order) into this int32 or int64 view
    /// of heap storage, now: new token ids or positions for a graph that is replayed.
    public func assign(integers: [Int]) {
        do {
            let target = try writableTarget(op: "assign", valueShape: [integers.count])
            try require(dtype == .int32 || dtype == .int64, "assign", [shape], "integers go into an int32 or int64 tensor, not \(dtype)")
            try require(integers.count == scalarCount, "assign", [shape], "\(integers.count) integers for \(scalarCount) elements")
            if dtype == .int32 {
                try require(integers.allSatisfy { Int32(exactly: $0) != nil }, "assign", [shape], "a value does not fit int32")
            }
            let base = target.storage.baseAddress, size = dtype.byteSize, wide = dtype == .int64
            var next = 0
            Layout.forEachOffset(shape: shape, strides: target.strides) { offset in
                let at = (target.offset + offset) * size, v = integers[next]
                if wide { base.storeBytes(of: Int64(v), toByteOffset: at, as: Int64.self) } else {
                    base.storeBytes(of: Int32(v), toByteOffset: at, as: Int32.self)
                }
                next += 1
            }
            Stats.recordCopy(bytes: integers.count * size, reason: .userRequest)
        } catch {
            Tensor.reportValue(error)
        }
    }

    /// This tensor's buffer view, when a write into it is allowed.
    func writableTarget(op: String, valueShape: [Int]) throws(TensorError) -> (storage: Storage, offset: Int, strides: [Int]) {
        guard case let .buffer(storage, offset, strides) = node.op else {
            throw TensorError(op: op, shapes: [shape, valueShape], reason: "the target must be a view of existing storage, not a lazy result")
        }
        try require(storage.kind == .heap, op, [shape, valueShape], "the target is a mapped file, which is read-only")
        try require(shape.indices.allSatisfy { strides[$0] != 0 || shape[$0] <= 1 }, op, [shape, valueShape],
                    "the target is a broadcast view: several elements share one address")
        return (storage, offset, strides)
    }

    /// Whether evaluating this tensor reads `storage`.
    func reads(_ storage: Storage) -> Bool {
        Node.postOrder([node]) { $0.realized == nil }.contains { n in
            if case let .buffer(s, _, _) = (n.realized ?? n).op { return s === storage }
            return false
        }
    }
}
