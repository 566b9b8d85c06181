import WeightStore

/// The transformer encoder families wpack runs, chosen by config.json's model_type.
public enum EncoderArchitecture: String, Sendable, CaseIterable {
    case bert, roberta, xlmRoberta = "xlm-roberta", camembert, distilbert, mpnet, electra

    /// Position ids start after the padding index (RoBERTa's create_position_ids_from_input_ids).
    var positionsAfterPadding: Bool { self == .roberta || self == .xlmRoberta || self == .camembert || self == .mpnet }
}

/// The parts of a transformer encoder's config.json that the forward pass needs, read from the
/// copy `wpack pack` keeps in the .wpk (metadata `file:config.json`). Options that would change
/// the numbers and that wpack does not implement are refused here, by name.
public struct EncoderConfig: Sendable, Equatable {
    public var architecture: EncoderArchitecture
    public var hiddenSize: Int
    /// ELECTRA's embedding width when it differs from the hidden size (projected up).
    public var embeddingSize: Int
    public var layers: Int
    public var heads: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var typeVocabularySize: Int
    public var vocabularySize: Int
    public var layerNormEps: Float
    public var activation: String
    public var padTokenId: Int
    /// MPNet's relative position buckets.
    public var relativeAttentionBuckets: Int

    public static let supportedActivations = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "gelu_python"]

    public init(store: WeightStore) throws {
        guard let text = store.file("config.json") else {
            throw ModelError.notAModel(kind: "transformer encoder", reason: "no config.json inside (pack the model folder, not only its weights)")
        }
        try self.init(json: text)
    }

    public init(json text: String) throws {
        let j: JSONValue
        do { j = try JSONValue.parse(text) } catch { throw ModelError.badConfig("config.json: \(error)") }
        guard j.pairs != nil else { throw ModelError.badConfig("config.json is not a JSON object") }
        guard let type = j["model_type"]?.string else { throw ModelError.badConfig("config.json has no model_type") }
        guard let arch = EncoderArchitecture(rawValue: type) else {
            throw ModelError.notAModel(kind: "transformer encoder wpack implements",
                                       reason: "config.json says model_type '\(type)'; wpack runs " + EncoderArchitecture.allCases.map(\.rawValue).joined(separator: ", "))
        }
        architecture = arch
        func int(_ keys: String..., default value: Int? = nil) throws -> Int {
            for key in keys { if let v = j[key]?.int { return v } }
            if let value { return value }
            throw ModelError.badConfig("config.json lacks the integer '\(keys[0])'")
        }
        if arch == .distilbert {
            hiddenSize = try int("dim")
            layers = try int("n_layers")
            heads = try int("n_heads")
            intermediateSize = try int("hidden_dim")
            activation = j["activation"]?.string ?? "gelu"
            layerNormEps = 1e-12
            typeVocabularySize = 0
            if j["sinusoidal_pos_embds"]?.bool == true {
                throw ModelError.badConfig("config.json: DistilBERT with sinusoidal_pos_embds is not implemented by wpack")
            }
        } else {
            hiddenSize = try int("hidden_size")
            layers = try int("num_hidden_layers")
            heads = try int("num_attention_heads")
            intermediateSize = try int("intermediate_size")
            activation = j["hidden_act"]?.string ?? "gelu"
            layerNormEps = Float(j["layer_norm_eps"]?.double ?? 1e-12)
            typeVocabularySize = arch == .mpnet ? 0 : try int("type_vocab_size", default: 2)
        }
        embeddingSize = arch == .electra ? try int("embedding_size", default: hiddenSize) : hiddenSize
        maxPositions = try int("max_position_embeddings")
        vocabularySize = try int("vocab_size")
        padTokenId = try int("pad_token_id", default: arch.positionsAfterPadding ? 1 : 0)
        relativeAttentionBuckets = arch == .mpnet ? try int("relative_attention_num_buckets", default: 32) : 0

        guard (1...4096).contains(layers) else { throw ModelError.badConfig("num_hidden_layers \(layers) is outside 1...4096") }
        guard heads > 0, hiddenSize > 0, hiddenSize % heads == 0 else {
            throw ModelError.badConfig("hidden_size \(hiddenSize) is not a positive multiple of \(heads) heads")
        }
        for (key, value) in [("intermediate_size", intermediateSize), ("max_position_embeddings", maxPositions),
                             ("vocab_size", vocabularySize), ("embedding_size", embeddingSize)] where value <= 0 {
            throw ModelError.badConfig("config.json: \(key) \(value) is not positive")
        }
        // Families with token types index row 0 for every text: an empty table cannot be read.
        if arch != .distilbert && arch != .mpnet && typeVocabularySize <= 0 {
            throw ModelError.badConfig("config.json: type_vocab_size \(typeVocabularySize) is not positive")
        }
        guard maxTokens > 0 else {
            throw ModelError.badConfig("config.json: max_position_embeddings \(maxPositions) leaves no position after the padding index \(positionPaddingIndex)")
        }
        guard padTokenId >= 0, padTokenId < vocabularySize else {
            throw ModelError.badConfig("config.json: pad_token_id \(padTokenId) is outside the vocabulary of \(vocabularySize)")
        }
        guard Self.supportedActivations.contains(activation) else {
            throw ModelError.badConfig("activation '\(activation)' is not implemented by wpack (it runs \(Self.supportedActivations.joined(separator: ", ")))")
        }
        if let kind = j["position_embedding_type"]?.string, kind != "absolute" {
            throw ModelError.badConfig("position_embedding_type '\(kind)' is not implemented by wpack (only absolute)")
        }
        if j["is_decoder"]?.bool == true || j["add_cross_attention"]?.bool == true {
            throw ModelError.badConfig("config.json describes a decoder (is_decoder / add_cross_attention); wpack runs encoders")
        }
    }

    /// The padding index position ids count from: config.json's pad_token_id for the RoBERTa
    /// family; 1 for MPNet, whose transformers implementation fixes it whatever the config says.
    public var positionPaddingIndex: Int { architecture == .mpnet ? 1 : padTokenId }

    /// Where the first real token's position is: after the padding index for the RoBERTa
    /// family and MPNet, 0 elsewhere.
    public var firstPosition: Int { architecture.positionsAfterPadding ? positionPaddingIndex + 1 : 0 }

    /// The longest input the position table allows.
    public var maxTokens: Int { maxPositions - firstPosition }

    /// How many tokens a model takes, special tokens included: the position table's limit,
    /// capped by the model's own sequence length (sentence-transformers' max_seq_length) or,
    /// without one, by the tokenizer's model_max_length.
    public func tokenLimit(sequenceLength: Int?, tokenizer: Tokenizer) -> Int {
        Swift.min(maxTokens, sequenceLength ?? tokenizer.modelMaxLength ?? maxTokens)
    }
}
