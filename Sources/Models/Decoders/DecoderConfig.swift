import WeightStore

/// The decoder families wpack generates text with.
public enum DecoderArchitecture: String, Sendable, CaseIterable {
    /// LLaMA and the models that share its graph (Mistral, SmolLM2): RMSNorm, RoPE,
    /// grouped-query attention, SwiGLU.
    case llama
    /// LLaMA's graph with biases on the query, key and value projections.
    case qwen2
    /// GPT-2: learned positions, LayerNorm, a GELU feed-forward block, biases everywhere.
    case gpt2
}

/// Where a decoder's weights came from, which decides their names and the pairing of RoPE's
/// features.
public enum DecoderWeightLayout: String, Sendable {
    /// llama.cpp's names (blk.N.attn_q ...), query and key rows permuted for interleaved RoPE.
    case gguf
    /// transformers' names (model.layers.N.self_attn.q_proj ..., GPT-2's transformer.h.N ...),
    /// RoPE on the two halves of each head.
    case huggingFace
}

/// What a decoder's forward pass needs to know, read from the metadata of a store packed from
/// a GGUF file (`general.architecture` and that architecture's keys) or from a Hugging Face
/// folder (config.json). Anything that would change the numbers and that wpack does not
/// implement is refused there, by name.
public struct DecoderConfig: Sendable, Equatable {
    public var architecture: DecoderArchitecture
    /// The name the file gives its model ("llama", "mistral", "qwen2" ...).
    public var modelType: String
    public var layout: DecoderWeightLayout
    public var layers: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var vocabularySize: Int
    /// The positions the model was trained for; generation stops there.
    public var contextLength: Int
    /// Mistral's sliding attention window, when it is shorter than the context: sessions are
    /// capped at it, since wpack's attention sees every cached position.
    public var slidingWindow: Int?
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling
    /// The epsilon of every norm (RMSNorm, or GPT-2's LayerNorm).
    public var normEps: Float
    /// Biases on the query, key and value projections (Qwen2; LLaMA with attention_bias).
    public var attentionBias: Bool
    /// A bias on the attention's output projection.
    public var outputBias: Bool
    /// Biases on the feed-forward projections.
    public var mlpBias: Bool
    /// The output head is the token embedding table.
    public var tiedEmbeddings: Bool

    /// GPT-2's feed-forward activation: GELU with tanh (gelu_new) or with erf (gelu).
    public var tanhGELU: Bool

    /// The names of this decoder's weights.
    var names: DecoderWeightNames { DecoderWeightNames(layout: layout, architecture: architecture, prefix: namePrefix) }
    /// GPT-2 checkpoints saved from GPT2LMHeadModel name their weights under "transformer.",
    /// those saved from GPT2Model under nothing.
    var namePrefix = ""

    /// Checks what every source must satisfy and reads the vocabulary from the embedding table.
    mutating func finish(store: WeightStore) throws {
        guard hiddenSize % heads == 0, heads % kvHeads == 0 else {
            throw ModelError.badConfig("\(heads) heads and \(kvHeads) key/value heads do not divide a width of \(hiddenSize)")
        }
        guard headDim == hiddenSize / heads, headDim % 2 == 0 || architecture == .gpt2 else {
            throw ModelError.badConfig("heads of \(headDim) features in a width of \(hiddenSize) with \(heads) heads: wpack runs even heads of width / heads")
        }
        let embedding = names.tokenEmbedding
        guard let table = store.info(embedding), table.shape.count == 2, table.shape[1] == hiddenSize else {
            throw ModelError.missingTensor(embedding)
        }
        if let declared = declaredVocabulary, declared != table.shape[0] {
            throw ModelError.badConfig("the vocabulary size is \(declared) but \(embedding) has \(table.shape[0]) rows")
        }
        vocabularySize = table.shape[0]
        if !tiedEmbeddings && store.info(names.outputHead + ".weight") == nil {
            throw ModelError.badConfig("the embeddings are not tied but there is no \(names.outputHead).weight")
        }
        if let w = slidingWindow, w >= contextLength { slidingWindow = nil }
    }

    /// The vocabulary size the file states, checked against the table.
    var declaredVocabulary: Int?
}

extension DecoderConfig {
    /// From a GGUF file's metadata or a model folder's config.json, whichever the store holds.
    public init(store: WeightStore) throws {
        if store.metadataValue("general.architecture") != nil {
            try self.init(gguf: store)
        } else if let json = store.file("config.json") {
            try self.init(huggingFace: json, store: store)
        } else {
            throw ModelError.notAModel(kind: "text decoder",
                                       reason: "neither general.architecture (a GGUF file) nor config.json (a model folder) in its metadata")
        }
    }
}
