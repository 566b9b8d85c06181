import LazyTensor
import WeightStore

/// One post-norm transformer layer: self-attention, residual, layer norm; feed-forward,
/// residual, layer norm. BERT, RoBERTa, XLM-R, DistilBERT, ELECTRA and MPNet all share it.
public struct EncoderLayer: Sendable {
    let query, key, value, attentionOutput, intermediate, output: Linear
    let attentionNorm, outputNorm: LayerNorm
    let heads: Int
    let activation: String

    init(store: WeightStore, names: EncoderWeightNames.Layer, config: EncoderConfig) throws {
        let h = config.hiddenSize, i = config.intermediateSize
        query = try Linear(store: store, prefix: names.query, inFeatures: h, outFeatures: h, requireBias: true)
        key = try Linear(store: store, prefix: names.key, inFeatures: h, outFeatures: h, requireBias: true)
        value = try Linear(store: store, prefix: names.value, inFeatures: h, outFeatures: h, requireBias: true)
        attentionOutput = try Linear(store: store, prefix: names.attentionOutput, inFeatures: h, outFeatures: h, requireBias: true)
        attentionNorm = try LayerNorm(store: store, prefix: names.attentionNorm, size: h, eps: config.layerNormEps)
        intermediate = try Linear(store: store, prefix: names.intermediate, inFeatures: h, outFeatures: i, requireBias: true)
        output = try Linear(store: store, prefix: names.output, inFeatures: i, outFeatures: h, requireBias: true)
        outputNorm = try LayerNorm(store: store, prefix: names.outputNorm, size: h, eps: config.layerNormEps)
        heads = config.heads
        activation = config.activation
    }

    /// x: [B, T, H]; attentionBias: added to the scores, broadcasting to [B, heads, T, T]
    /// (the padding mask [B, 1, 1, T], plus MPNet's relative position bias). With `segments`,
    /// x is [1, N, H], several texts packed one after another with no padding, each attending
    /// to its own tokens only; the bias, if any, is [1, heads, L, L] for the longest text.
    public func callAsFunction(_ x: Tensor, attentionBias: Tensor?, segments: [Int]? = nil) -> Tensor {
        let (b, t, h) = (x.shape[0], x.shape[1], x.shape[2])
        let d = h / heads
        // [B, T, H] -> [B, heads, T, d]: views of each projection's output, read by the
        // attention kernel through their strides.
        func split(_ y: Tensor) -> Tensor { y.reshaped([b, t, heads, d]).permuted([0, 2, 1, 3]) }
        let q = split(query(x)), k = split(key(x)), v = split(value(x))
        // softmax(q·kᵀ/√d + bias)·v in one kernel, its output already in [B, T, heads, d]
        // order, so merging the heads back into [B, T, H] is a view.
        let context = scaledDotProductAttention(q, k, v, mask: attentionBias, scale: 1 / Float(d).squareRoot(), segments: segments)
            .permuted([0, 2, 1, 3]).reshaped([b, t, h])
        let attended = attentionNorm(attentionOutput(context) + x)
        let inner = intermediate(attended)
        let activated: Tensor
        switch activation {
        case "relu": activated = inner.relu()
        case "gelu_new", "gelu_pytorch_tanh": activated = inner.gelu(approximate: .tanh)
        default: activated = inner.gelu()
        }
        return outputNorm(output(activated) + attended)
    }
}
