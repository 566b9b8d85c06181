import WeightStore

/// Where each family keeps its weights. The encoder is the same post-norm transformer in all
/// of them; only the names differ (and DistilBERT's and MPNet's differ most).
struct EncoderWeightNames {
    let prefix: String
    let architecture: EncoderArchitecture

    /// Checkpoints saved from a task model (BertForSequenceClassification, ...) carry the base
    /// model's name as a prefix; sentence-transformers' checkpoints carry none.
    static func detect(in store: WeightStore, architecture: EncoderArchitecture) throws -> EncoderWeightNames {
        let candidates = ["", "bert.", "roberta.", "electra.", "distilbert.", "mpnet.", "model."]
        guard let prefix = candidates.first(where: { store.info($0 + "embeddings.word_embeddings.weight") != nil }) else {
            throw ModelError.notAModel(kind: "\(architecture.rawValue) encoder", reason: "no embeddings.word_embeddings.weight tensor")
        }
        return EncoderWeightNames(prefix: prefix, architecture: architecture)
    }

    var words: String { prefix + "embeddings.word_embeddings.weight" }
    var positions: String { prefix + "embeddings.position_embeddings.weight" }
    var tokenTypes: String { prefix + "embeddings.token_type_embeddings.weight" }
    var embeddingNorm: String { prefix + "embeddings.LayerNorm" }
    var embeddingProjection: String { prefix + "embeddings_project" }
    var relativeAttentionBias: String { prefix + "encoder.relative_attention_bias.weight" }

    struct Layer { let query, key, value, attentionOutput, attentionNorm, intermediate, output, outputNorm: String }

    func layer(_ i: Int) -> Layer {
        switch architecture {
        case .distilbert:
            let p = "\(prefix)transformer.layer.\(i)."
            return Layer(query: p + "attention.q_lin", key: p + "attention.k_lin", value: p + "attention.v_lin",
                         attentionOutput: p + "attention.out_lin", attentionNorm: p + "sa_layer_norm",
                         intermediate: p + "ffn.lin1", output: p + "ffn.lin2", outputNorm: p + "output_layer_norm")
        case .mpnet:
            let p = "\(prefix)encoder.layer.\(i)."
            return Layer(query: p + "attention.attn.q", key: p + "attention.attn.k", value: p + "attention.attn.v",
                         attentionOutput: p + "attention.attn.o", attentionNorm: p + "attention.LayerNorm",
                         intermediate: p + "intermediate.dense", output: p + "output.dense", outputNorm: p + "output.LayerNorm")
        default:
            let p = "\(prefix)encoder.layer.\(i)."
            return Layer(query: p + "attention.self.query", key: p + "attention.self.key", value: p + "attention.self.value",
                         attentionOutput: p + "attention.output.dense", attentionNorm: p + "attention.output.LayerNorm",
                         intermediate: p + "intermediate.dense", output: p + "output.dense", outputNorm: p + "output.LayerNorm")
        }
    }
}
