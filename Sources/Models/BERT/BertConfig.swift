import Foundation
import WeightStore

/// The parts of a BERT config.json the encoder needs, read from the copy `wpack pack` keeps in
/// the .wpk (metadata `file:config.json`).
public struct BertConfig: Sendable, Equatable {
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var typeVocabularySize: Int
    public var vocabularySize: Int
    public var layerNormEps: Float
    public var activation: String
    /// sentence-transformers' max_seq_length (sentence_bert_config.json), else max positions.
    public var maxSequenceLength: Int
    public var lowercase: Bool

    public init(store: WeightStore) throws {
        guard let text = store.metadata["file:config.json"] else {
            throw ModelError.notAModel(kind: "BERT sentence encoder", reason: "no config.json inside (pack the model folder, not only its weights)")
        }
        guard let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw ModelError.badConfig("config.json is not a JSON object")
        }
        func int(_ key: String) throws -> Int {
            guard let v = json[key] as? Int else { throw ModelError.badConfig("config.json lacks the integer '\(key)'") }
            return v
        }
        if let type = json["model_type"] as? String, type != "bert" {
            throw ModelError.notAModel(kind: "BERT sentence encoder", reason: "config.json says model_type '\(type)'")
        }
        hiddenSize = try int("hidden_size")
        layers = try int("num_hidden_layers")
        heads = try int("num_attention_heads")
        intermediateSize = try int("intermediate_size")
        maxPositions = try int("max_position_embeddings")
        typeVocabularySize = (json["type_vocab_size"] as? Int) ?? 2
        vocabularySize = try int("vocab_size")
        layerNormEps = Float((json["layer_norm_eps"] as? Double) ?? 1e-12)
        activation = (json["hidden_act"] as? String) ?? "gelu"
        guard heads > 0, hiddenSize % heads == 0 else { throw ModelError.badConfig("hidden_size \(hiddenSize) is not a multiple of \(heads) heads") }
        guard ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"].contains(activation) else {
            throw ModelError.badConfig("activation '\(activation)' is not supported")
        }
        var maxLength = maxPositions
        if let sb = store.metadata["file:sentence_bert_config.json"],
           let object = try? JSONSerialization.jsonObject(with: Data(sb.utf8)) as? [String: Any],
           let m = object["max_seq_length"] as? Int, m > 0 {
            maxLength = Swift.min(m, maxPositions)
        }
        maxSequenceLength = maxLength
        var lower = true
        if let tc = store.metadata["file:tokenizer_config.json"],
           let object = try? JSONSerialization.jsonObject(with: Data(tc.utf8)) as? [String: Any],
           let l = object["do_lower_case"] as? Bool {
            lower = l
        }
        lowercase = lower
    }
}
