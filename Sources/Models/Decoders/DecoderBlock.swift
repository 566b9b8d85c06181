import LazyTensor
import WeightStore

/// One pre-norm decoder layer of the LLaMA family: x + attention(norm(x)), then
/// h + mlp(norm(h)); each residual sum is the epilogue of the projection before it.
public struct DecoderBlock: Sendable {
    public let attentionNorm: RMSNorm
    public let attention: MultiHeadAttention
    public let mlpNorm: RMSNorm
    public let mlp: GatedMLP

    init(store: WeightStore, index: Int, config c: DecoderConfig, rotary: RotaryEmbedding) throws {
        let p = "blk.\(index)."
        attentionNorm = try RMSNorm(store: store, prefix: p + "attn_norm", size: c.hiddenSize, eps: c.rmsNormEps)
        mlpNorm = try RMSNorm(store: store, prefix: p + "ffn_norm", size: c.hiddenSize, eps: c.rmsNormEps)
        let q = try Linear(store: store, prefix: p + "attn_q", inFeatures: c.hiddenSize, outFeatures: c.heads * c.headDim,
                           requireBias: c.architecture == .qwen2)
        let k = try Linear(store: store, prefix: p + "attn_k", inFeatures: c.hiddenSize, outFeatures: c.kvHeads * c.headDim,
                           requireBias: c.architecture == .qwen2)
        let v = try Linear(store: store, prefix: p + "attn_v", inFeatures: c.hiddenSize, outFeatures: c.kvHeads * c.headDim,
                           requireBias: c.architecture == .qwen2)
        let o = try Linear(store: store, prefix: p + "attn_output", inFeatures: c.heads * c.headDim, outFeatures: c.hiddenSize)
        attention = MultiHeadAttention(query: q, key: k, value: v, output: o, heads: c.heads, kvHeads: c.kvHeads,
                                       rotary: rotary, causal: true)
        mlp = try GatedMLP(store: store, prefix: p, width: c.hiddenSize, hidden: c.intermediateSize,
                           names: ("ffn_gate", "ffn_up", "ffn_down"))
    }

    func callAsFunction(_ x: Tensor, cache: KVCache, rotation: RotaryEmbedding.Rotation) -> Tensor {
        let h = x + attention(attentionNorm(x), cache: cache, rotation: rotation)
        return h + mlp(mlpNorm(h))
    }
}
