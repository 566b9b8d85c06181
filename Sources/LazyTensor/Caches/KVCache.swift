/// The keys and values of a decoder's attention layer, preallocated for `capacity` positions
/// and written in place: a decode step writes its new rows (a write kernel evaluates their
/// elementwise chain, RoPE say, into the cache; a projection's output, stored by its GEMM, is
/// copied there, only those rows) and reads the rows before them where they lie. Nothing is
/// concatenated, nothing earlier is recomputed, and since the attention kernel reads the
/// length when it runs, every decode step of a generation reuses one plan.
///
///     let cache = KVCache(heads: 4, capacity: 512, headDim: 64)
///     let (k, v) = cache.append(keys: kNew, values: vNew)     // [1, 4, n, 64] each, lazy
///     let y = scaledDotProductAttention(q, k, v, causal: true)  // reads positions 0 ..< cache.length
///
/// The writes run when a graph that reads them is evaluated (they are inputs of the attention
/// node); a write not evaluated before the next append is made an input of that one, so no
/// step's rows are lost whichever result is evaluated. A cache is used from one task at a time.
///
/// A decode loop can also build its step graph once and replay it (`Replay`): appended with
/// `placement: .whenRun`, the rows land at the cache's length as it is when the write runs,
/// the attention reads up to there, and `advance(by:)` after each run makes them part of the
/// cache.
public final class KVCache {
    /// Where an append's rows land.
    public enum Placement: Sendable {
        /// At the cache's length now; the length grows at once. A graph for this step only.
        case now
        /// At the cache's length when the write runs; the length grows by `advance(by:)`
        /// after each run. A step graph replayed at each next position.
        case whenRun
    }

    public let batch: Int
    public let heads: Int
    public let capacity: Int
    public let headDim: Int
    public let valueDim: Int
    /// Positions written (or scheduled to be written) so far.
    public private(set) var length: Int {
        get { runLength.withLock { $0 } }
        set { runLength.withLock { $0 = newValue } }
    }
    /// The length's storage, which the kernels of `.whenRun` writes also read.
    private let runLength = Locked(0)

    private let keyStorage: Tensor
    private let valueStorage: Tensor
    /// The last writes, kept until they have run so a later write can follow them.
    private var lastWrites: (keys: Node, values: Node)?

    /// Sizes that are not positive are a TensorError; the cache is then empty (capacity 0),
    /// so every append is refused too.
    public init(batch: Int = 1, heads: Int, capacity: Int, headDim: Int, valueDim: Int? = nil) {
        let sizes = [batch, heads, capacity, headDim, valueDim ?? headDim]
        let valid = sizes.allSatisfy { $0 > 0 } && Layout.count(sizes) != nil
        if !valid {
            Tensor.reportValue(TensorError(op: "KVCache", shapes: [sizes], reason: "batch, heads, capacity and widths must be positive"))
        }
        self.batch = valid ? batch : 1
        self.heads = valid ? heads : 1
        self.capacity = valid ? capacity : 0
        self.headDim = valid ? headDim : 1
        self.valueDim = valid ? (valueDim ?? headDim) : 1
        keyStorage = Tensor.zeros(shape: [self.batch, self.heads, self.capacity, self.headDim])
        valueStorage = Tensor.zeros(shape: [self.batch, self.heads, self.capacity, self.valueDim])
    }

    /// Schedules `keys` [batch, heads, n, headDim] and `values` [batch, heads, n, valueDim] for
    /// positions length ..< length + n and returns the views of positions 0 ..< length + n.
    /// Pass those to `scaledDotProductAttention`: it recognises them and reads the cache in
    /// place, with the length taken at run time. With `.whenRun`, the length does not grow
    /// here: call `advance(by: n)` once the graph has run.
    public func append(keys: Tensor, values: Tensor, placement: Placement = .now) -> (keys: Tensor, values: Tensor) {
        let n = keys.rank == 4 ? keys.shape[2] : 0
        let expectedK = [batch, heads, n, headDim], expectedV = [batch, heads, n, valueDim]
        guard keys.shape == expectedK, values.shape == expectedV, length + n <= capacity else {
            let reason = length + n > capacity
                ? "\(n) new positions after \(length) exceed the capacity of \(capacity)"
                : "keys must be \(expectedK) and values \(expectedV)"
            let error = TensorError(op: "KVCache.append", shapes: [keys.shape, values.shape], reason: reason)
            let k = Tensor.report(error, shape: [batch, heads, length + n, headDim])
            return (k, Tensor.standIn(shape: [batch, heads, length + n, valueDim]))
        }
        let position: WritePosition = placement == .now ? .fixed(length) : .counter(runLength)
        let visible = length + n
        if placement == .now { length += n }
        let pending = lastWrites.flatMap { $0.keys.realized == nil || $0.values.realized == nil ? $0 : nil }
        func write(_ value: Tensor, into target: Tensor, after: Node?) -> Node {
            guard case let .buffer(storage, offset, strides) = target.node.op else { preconditionFailure("cache storage is a buffer") }
            return Node(.write(storage, offset: offset, strides: strides, axis: 2, start: position),
                        [value.node] + (after.map { [$0] } ?? []), shape: target.shape)
        }
        let k = write(keys, into: keyStorage, after: pending?.keys)
        let v = write(values, into: valueStorage, after: pending?.values)
        // A replayed step's writes run with its replays, not with whatever reads the cache next.
        if placement == .now { lastWrites = (k, v) }
        return (Tensor(node: k).sliced(axis: 2, range: 0..<visible), Tensor(node: v).sliced(axis: 2, range: 0..<visible))
    }

    /// Makes the `n` rows a replayed step has just written (appended `.whenRun`) part of the
    /// cache. More than the capacity holds is a TensorError, and the length stays.
    public func advance(by n: Int) {
        guard n >= 0, length + n <= capacity else {
            Tensor.reportValue(TensorError(op: "KVCache.advance", shapes: [[n]],
                                           reason: "\(n) more positions after \(length) exceed the capacity of \(capacity)"))
            return
        }
        length += n
    }

    /// Forgets every position (the storage is kept for the next sequence).
    public func reset() {
        length = 0
        lastWrites = nil
    }

    /// The keys written so far, as a view of the cache (running a pending write first).
    public var keys: Tensor {
        if let last = lastWrites { _ = Tensor(node: last.keys).materialized() }
        return keyStorage.sliced(axis: 2, range: 0..<length)
    }

    /// The values written so far, as a view of the cache (running a pending write first).
    public var values: Tensor {
        if let last = lastWrites { _ = Tensor(node: last.values).materialized() }
        return valueStorage.sliced(axis: 2, range: 0..<length)
    }
}
