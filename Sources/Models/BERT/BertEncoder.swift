import LazyTensor
import WeightStore

/// One transformer layer of BERT: self-attention with a padding mask, then the feed-forward
/// block, each followed by a residual connection and layer norm (post-norm).
public struct BertLayer: Sendable {
    let query, key, value, attentionOutput, intermediate, output: Linear
    let attentionNorm, outputNorm: LayerNorm
    let heads: Int
    let activation: String

    init(store: WeightStore, prefix: String, config: BertConfig) throws {
        let h = config.hiddenSize, i = config.intermediateSize
        query = try Linear(store: store, prefix: prefix + "attention.self.query", inFeatures: h, outFeatures: h)
        key = try Linear(store: store, prefix: prefix + "attention.self.key", inFeatures: h, outFeatures: h)
        value = try Linear(store: store, prefix: prefix + "attention.self.value", inFeatures: h, outFeatures: h)
        attentionOutput = try Linear(store: store, prefix: prefix + "attention.output.dense", inFeatures: h, outFeatures: h)
        attentionNorm = try LayerNorm(store: store, prefix: prefix + "attention.output.LayerNorm", size: h, eps: config.layerNormEps)
        intermediate = try Linear(store: store, prefix: prefix + "intermediate.dense", inFeatures: h, outFeatures: i)
        output = try Linear(store: store, prefix: prefix + "output.dense", inFeatures: i, outFeatures: h)
        outputNorm = try LayerNorm(store: store, prefix: prefix + "output.LayerNorm", size: h, eps: config.layerNormEps)
        heads = config.heads
        activation = config.activation
    }

    /// x: [B, T, H]; additiveMask: [B, 1, 1, T] (0 where attended, a large negative where padded).
    public func callAsFunction(_ x: Tensor, additiveMask: Tensor) -> Tensor {
        let (b, t, h) = (x.shape[0], x.shape[1], x.shape[2])
        let d = h / heads
        // [B, T, H] -> [B, heads, T, d]: views of each projection's output, read by the GEMMs
        // below through their strides.
        func split(_ y: Tensor) -> Tensor { y.reshaped([b, t, heads, d]).permuted([0, 2, 1, 3]) }
        let q = split(query(x)), k = split(key(x)), v = split(value(x))
        // softmax(q·kᵀ/√d + mask)·v in one kernel, its output already in [B, T, heads, d]
        // order, so merging the heads back into [B, T, H] is a view.
        let context = scaledDotProductAttention(q, k, v, mask: additiveMask, scale: 1 / Float(d).squareRoot())
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

/// BERT's embeddings and encoder stack, reading every weight as a view into the store.
public struct BertEncoder: Sendable {
    public let config: BertConfig
    let words, positions, tokenTypes: Embedding
    let embeddingNorm: LayerNorm
    let layers: [BertLayer]

    public init(store: WeightStore, config: BertConfig) throws {
        // Checkpoints saved from BertForX carry a "bert." prefix; sentence-transformers' do not.
        let prefix = store.info("bert.embeddings.word_embeddings.weight") != nil ? "bert." : ""
        guard store.info(prefix + "embeddings.word_embeddings.weight") != nil else {
            throw ModelError.notAModel(kind: "BERT sentence encoder", reason: "no embeddings.word_embeddings.weight tensor")
        }
        self.config = config
        let h = config.hiddenSize
        words = try Embedding(store: store, name: prefix + "embeddings.word_embeddings.weight", rows: config.vocabularySize, width: h)
        positions = try Embedding(store: store, name: prefix + "embeddings.position_embeddings.weight", rows: config.maxPositions, width: h)
        tokenTypes = try Embedding(store: store, name: prefix + "embeddings.token_type_embeddings.weight", width: h)
        embeddingNorm = try LayerNorm(store: store, prefix: prefix + "embeddings.LayerNorm", size: h, eps: config.layerNormEps)
        layers = try (0..<config.layers).map { try BertLayer(store: store, prefix: "\(prefix)encoder.layer.\($0).", config: config) }
    }

    /// The additive attention mask [B, 1, 1, T] for a 0/1 mask [B, T].
    static func additiveMask(_ mask: [Float], batch: Int, length: Int) -> Tensor {
        Tensor(shape: [batch, 1, 1, length], scalars: mask.map { $0 > 0 ? 0 : -1e30 })
    }

    /// Hidden states after the embeddings and after each layer (lazy; nothing runs yet).
    /// ids: [B·T] token ids, row-major; mask: [B·T] of 1 (token) or 0 (padding).
    public func hiddenStates(ids: [Int], mask: [Float], batch: Int, length: Int) -> [Tensor] {
        let embedded = words(ids, shape: [batch, length])
            + positions.table.sliced(axis: 0, range: 0..<length)
            + tokenTypes.table.sliced(axis: 0, range: 0..<1)
        var states = [embeddingNorm(embedded)]
        let additive = BertEncoder.additiveMask(mask, batch: batch, length: length)
        for layer in layers { states.append(layer(states.last!, additiveMask: additive)) }
        return states
    }
}
