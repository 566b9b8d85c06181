import LazyTensor
import WeightStore

/// Multi-head attention with grouped-query heads and optional rotary positions: the q, k, v
/// projections, heads split as views, RoPE, one attention kernel (causal or not, reading a
/// KVCache in place when given one), heads merged as a view, the output projection.
public struct MultiHeadAttention: Sendable {
    public let query: Linear
    public let key: Linear
    public let value: Linear
    public let output: Linear
    public let heads: Int
    public let kvHeads: Int
    public let headDim: Int
    public let rotary: RotaryEmbedding?
    public let causal: Bool

    public init(query: Linear, key: Linear, value: Linear, output: Linear, heads: Int, kvHeads: Int? = nil,
                rotary: RotaryEmbedding? = nil, causal: Bool = false) {
        self.query = query
        self.key = key
        self.value = value
        self.output = output
        self.heads = heads
        self.kvHeads = kvHeads ?? heads
        headDim = query.outFeatures / heads
        self.rotary = rotary
        self.causal = causal
    }

    /// LLaMA's names: `prefix.q_proj`, `.k_proj`, `.v_proj`, `.o_proj` (biases when stored, as
    /// Qwen2's q/k/v have).
    public init(store: WeightStore, prefix: String, heads: Int, kvHeads: Int? = nil, rotary: RotaryEmbedding? = nil,
                causal: Bool = true, names: (q: String, k: String, v: String, o: String) = ("q_proj", "k_proj", "v_proj", "o_proj")) throws {
        let q = try Linear(store: store, prefix: prefix + "." + names.q)
        let kvh = kvHeads ?? heads
        guard heads > 0, kvh > 0, heads % kvh == 0, q.outFeatures % heads == 0 else {
            throw ModelError.badConfig("\(heads) heads and \(kvh) key/value heads do not fit \(prefix).\(names.q) [\(q.outFeatures), ...]")
        }
        let d = q.outFeatures / heads
        let k = try Linear(store: store, prefix: prefix + "." + names.k, inFeatures: q.inFeatures, outFeatures: kvh * d)
        let v = try Linear(store: store, prefix: prefix + "." + names.v, inFeatures: q.inFeatures, outFeatures: kvh * d)
        let o = try Linear(store: store, prefix: prefix + "." + names.o, inFeatures: heads * d)
        self.init(query: q, key: k, value: v, output: o, heads: heads, kvHeads: kvh, rotary: rotary, causal: causal)
    }

    /// x [B, T, width] -> [B, T, width]. With a cache, the new keys and values are written into
    /// it and the queries attend to everything cached (positions continue from its length).
    /// `rotation`: the rotary angles of x's positions, when the caller shares one lookup
    /// between layers (otherwise each call looks them up).
    public func callAsFunction(_ x: Tensor, cache: KVCache? = nil, mask: Tensor? = nil,
                               rotation: RotaryEmbedding.Rotation? = nil) -> Tensor {
        attend(x, cache: cache, placement: .now, mask: mask, rotation: rotation)
    }

    /// With `placement: .whenRun` (a step graph that is replayed) the cache's new rows land at
    /// its length when the graph runs, and the rotation must come from the caller's position
    /// buffer: one looked up here would be fixed at this step's position.
    func attend(_ x: Tensor, cache: KVCache?, placement: KVCache.Placement, mask: Tensor? = nil,
                rotation: RotaryEmbedding.Rotation?) -> Tensor {
        precondition(placement == .now || rotary == nil || rotation != nil, "a replayed step takes its rotation from its position buffer")
        let (b, t) = (x.shape[0], x.shape[1])
        func split(_ y: Tensor, _ h: Int) -> Tensor { y.reshaped([b, t, h, headDim]).permuted([0, 2, 1, 3]) }
        var q = split(query(x), heads), k = split(key(x), kvHeads)
        let v = split(value(x), kvHeads)
        let start = cache?.length ?? 0
        if let rotary {
            let r = rotation ?? rotary.rotation(start: start, count: t)
            // Features in halves order for both (the cache holds keys so): see rotatedForAttention.
            q = rotary.rotatedForAttention(q, r)
            k = rotary.rotatedForAttention(k, r)
        }
        var keys = k, values = v
        if let cache { (keys, values) = cache.append(keys: k, values: v, placement: placement) }
        let context = scaledDotProductAttention(q, keys, values, mask: mask, causal: causal)
        return output(context.permuted([0, 2, 1, 3]).reshaped([b, t, heads * headDim]))
    }

    /// A cache sized for this layer.
    public func makeCache(batch: Int = 1, capacity: Int) -> KVCache {
        KVCache(batch: batch, heads: kvHeads, capacity: capacity, headDim: headDim)
    }
}
