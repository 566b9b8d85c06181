import WeightStore

/// The decoder families wpack generates text with.
public enum DecoderArchitecture: String, Sendable, CaseIterable {
    /// LLaMA and the models that share its graph (Mistral, SmolLM2): RMSNorm, RoPE,
    /// grouped-query attention, SwiGLU.
    case llama
    /// LLaMA's graph with biases on the query, key and value projections.
    case qwen2
}

/// Where a decoder's weights came from, which decides their names and the pairing of RoPE's
/// features.
public enum DecoderWeightLayout: String, Sendable {
    /// llama.cpp's names (blk.N.attn_q ...), query and key rows permuted for interleaved RoPE.
    case gguf
}

/// What a decoder's forward pass needs to know, read from the metadata of a store packed from
/// a GGUF file (`general.architecture` and that architecture's keys). Anything that would
/// change the numbers and that wpack does not implement is refused here, by name.
public struct DecoderConfig: Sendable, Equatable {
    public var architecture: DecoderArchitecture
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
    public var ropeTheta: Double
    /// Linear position scaling (positions divided by this factor); 1 for none.
    public var ropeScale: Double
    public var rmsNormEps: Float
    /// The output head is the token embedding table (no output.weight stored).
    public var tiedEmbeddings: Bool

    public init(store: WeightStore) throws {
        func string(_ key: String) -> String? { if case let .string(s)? = store.metadataValue(key) { s } else { nil } }
        func number(_ key: String) -> Double? {
            switch store.metadataValue(key) {
            case let .int(i)?: Double(i)
            case let .double(d)?: d
            default: nil
            }
        }
        guard let arch = string("general.architecture") else {
            throw ModelError.notAModel(kind: "text decoder", reason: "no general.architecture in its metadata (pack a GGUF file)")
        }
        guard let architecture = DecoderArchitecture(rawValue: arch) else {
            throw ModelError.notAModel(kind: "text decoder wpack implements",
                                       reason: "general.architecture is '\(arch)'; wpack runs " + DecoderArchitecture.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self.architecture = architecture
        layout = .gguf
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            if let v = number("\(arch).\(key)") {
                guard v >= 1, v < 2_147_483_648, v.rounded() == v else { throw ModelError.badConfig("\(arch).\(key) is \(v), not a positive integer") }
                return Int(v)
            }
            if let value { return value }
            throw ModelError.badConfig("the metadata lacks \(arch).\(key)")
        }
        layers = try int("block_count")
        hiddenSize = try int("embedding_length")
        intermediateSize = try int("feed_forward_length")
        heads = try int("attention.head_count")
        kvHeads = try int("attention.head_count_kv", default: heads)
        contextLength = try int("context_length")
        guard hiddenSize % heads == 0, heads % kvHeads == 0 else {
            throw ModelError.badConfig("\(heads) heads and \(kvHeads) key/value heads do not divide a width of \(hiddenSize)")
        }
        headDim = try int("attention.key_length", default: hiddenSize / heads)
        let valueDim = try int("attention.value_length", default: headDim)
        guard headDim == hiddenSize / heads, valueDim == headDim, headDim % 2 == 0 else {
            throw ModelError.badConfig("heads of \(headDim) (keys) and \(valueDim) (values) features in a width of \(hiddenSize) with \(heads) heads: wpack runs even heads of width / heads")
        }
        let rotated = try int("rope.dimension_count", default: headDim)
        guard rotated == headDim else {
            throw ModelError.badConfig("\(arch).rope.dimension_count is \(rotated) of \(headDim) features: partial rotary embeddings are not implemented")
        }
        ropeTheta = number("\(arch).rope.freq_base") ?? 10_000
        guard ropeTheta > 1 else { throw ModelError.badConfig("\(arch).rope.freq_base is \(ropeTheta)") }
        ropeScale = 1
        let scaling = string("\(arch).rope.scaling.type") ?? "none"
        switch scaling {
        case "none": break
        case "linear":
            guard let factor = number("\(arch).rope.scaling.factor"), factor >= 1 else {
                throw ModelError.badConfig("linear rope scaling without a factor >= 1 (\(arch).rope.scaling.factor)")
            }
            ropeScale = factor
        default:
            throw ModelError.badConfig("\(arch).rope.scaling.type '\(scaling)' is not implemented (wpack runs none and linear)")
        }
        guard let eps = number("\(arch).attention.layer_norm_rms_epsilon"), eps > 0 else {
            throw ModelError.badConfig("the metadata lacks a positive \(arch).attention.layer_norm_rms_epsilon")
        }
        rmsNormEps = Float(eps)
        guard let embedding = store.info("token_embd.weight"), embedding.shape.count == 2, embedding.shape[1] == hiddenSize else {
            throw ModelError.missingTensor("token_embd.weight")
        }
        vocabularySize = embedding.shape[0]
        if let declared = number("\(arch).vocab_size"), Int(declared) != vocabularySize {
            throw ModelError.badConfig("\(arch).vocab_size is \(Int(declared)) but token_embd.weight has \(vocabularySize) rows")
        }
        tiedEmbeddings = store.info("output.weight") == nil
    }
}
