import WeightStore

extension DecoderConfig {
    /// The model types a folder's config.json may name, and the graph each runs.
    static let huggingFaceTypes: [String: DecoderArchitecture] = ["llama": .llama, "mistral": .llama, "qwen2": .qwen2, "gpt2": .gpt2]

    /// From a Hugging Face folder's config.json (kept by `wpack pack` as `file:config.json`),
    /// with the defaults of transformers' config classes.
    init(huggingFace text: String, store: WeightStore) throws {
        let j: JSONValue
        do { j = try JSONValue.parse(text) } catch { throw ModelError.badConfig("config.json: \(error)") }
        guard j.pairs != nil else { throw ModelError.badConfig("config.json is not a JSON object") }
        guard let type = j["model_type"]?.string else { throw ModelError.badConfig("config.json has no model_type") }
        guard let architecture = Self.huggingFaceTypes[type] else {
            throw ModelError.notAModel(kind: "text decoder wpack implements",
                                       reason: "config.json says model_type '\(type)'; wpack runs " + Self.huggingFaceTypes.keys.sorted().joined(separator: ", "))
        }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            if let raw = j[key], raw != .null {
                guard let v = raw.int, v >= 1, v < 2_147_483_648 else { throw ModelError.badConfig("config.json: \(key) is not a positive integer") }
                return v
            }
            if let value { return value }
            throw ModelError.badConfig("config.json lacks the integer '\(key)'")
        }
        func bool(_ key: String, default value: Bool) throws -> Bool {
            guard let raw = j[key], raw != .null else { return value }
            guard let b = raw.bool else { throw ModelError.badConfig("config.json: \(key) is not true or false") }
            return b
        }
        func positive(_ key: String, default value: Double? = nil) throws -> Double {
            if let raw = j[key], raw != .null {
                guard let v = raw.double, v > 0, v.isFinite else { throw ModelError.badConfig("config.json: \(key) is not a positive number") }
                return v
            }
            if let value { return value }
            throw ModelError.badConfig("config.json lacks the number '\(key)'")
        }

        if architecture == .gpt2 {
            let hidden = try int("n_embd"), heads = try int("n_head")
            let activation = j["activation_function"]?.string ?? "gelu_new"
            guard ["gelu_new", "gelu_pytorch_tanh", "gelu"].contains(activation) else {
                throw ModelError.badConfig("config.json: activation_function '\(activation)' is not implemented (wpack runs gelu_new, gelu_pytorch_tanh, gelu)")
            }
            guard try bool("scale_attn_weights", default: true), !(try bool("scale_attn_by_inverse_layer_idx", default: false)) else {
                throw ModelError.badConfig("config.json: GPT-2 attention without scale_attn_weights, or with scale_attn_by_inverse_layer_idx, is not implemented")
            }
            let names = ["transformer.", ""]
            let prefix = names.first { store.info($0 + "wte.weight") != nil } ?? "transformer."
            self.init(architecture: .gpt2, modelType: type, layout: .huggingFace, layers: try int("n_layer"), hiddenSize: hidden,
                      intermediateSize: try int("n_inner", default: 4 * hidden), heads: heads, kvHeads: heads,
                      headDim: hidden / Swift.max(heads, 1), vocabularySize: 0, contextLength: try int("n_positions"),
                      slidingWindow: nil, ropeTheta: 10_000, ropeScaling: .none,
                      normEps: Float(try positive("layer_norm_epsilon", default: 1e-5)), attentionBias: true, outputBias: true,
                      mlpBias: true, tiedEmbeddings: try bool("tie_word_embeddings", default: true), tanhGELU: activation != "gelu")
            namePrefix = prefix
        } else {
            let activation = j["hidden_act"]?.string ?? "silu"
            guard activation == "silu" else {
                throw ModelError.badConfig("config.json: hidden_act '\(activation)' is not implemented for \(type) (wpack runs silu)")
            }
            let hidden = try int("hidden_size"), heads = try int("num_attention_heads")
            if let partial = j["partial_rotary_factor"]?.double, partial != 1 {
                throw ModelError.badConfig("config.json: partial_rotary_factor \(partial) is not implemented")
            }
            // transformers 5 writes rope_theta and the scaling into rope_parameters; earlier
            // versions wrote rope_theta and rope_scaling at the top level.
            let rope = j["rope_parameters"].flatMap { $0 == .null ? nil : $0 } ?? j["rope_scaling"].flatMap { $0 == .null ? nil : $0 }
            let theta = try rope?["rope_theta"]?.double ?? positive("rope_theta", default: 10_000)
            guard theta > 1 else { throw ModelError.badConfig("config.json: rope_theta is \(theta)") }
            var scaling = RopeScaling.none
            if let rope {
                func number(_ key: String) throws -> Double {
                    guard let v = rope[key]?.double else { throw ModelError.badConfig("config.json: rope scaling lacks \(key)") }
                    return v
                }
                switch rope["rope_type"]?.string ?? rope["type"]?.string ?? "default" {
                case "default": break
                case "linear": scaling = .linear(factor: try number("factor"))
                case "llama3":
                    scaling = .llama3(factor: try number("factor"), lowFrequencyFactor: try number("low_freq_factor"),
                                      highFrequencyFactor: try number("high_freq_factor"),
                                      originalContext: try number("original_max_position_embeddings"))
                case let other:
                    throw ModelError.badConfig("config.json: rope type '\(other)' is not implemented (wpack runs default, linear and llama3)")
                }
            }
            let attentionBias = try bool("attention_bias", default: false)
            var window: Int?
            let windowed = type == "qwen2" ? try bool("use_sliding_window", default: false) : type == "mistral"
            if windowed {
                if let w = j["sliding_window"], w != .null { window = try int("sliding_window") }
            }
            self.init(architecture: architecture, modelType: type, layout: .huggingFace, layers: try int("num_hidden_layers"),
                      hiddenSize: hidden, intermediateSize: try int("intermediate_size"), heads: heads,
                      kvHeads: try int("num_key_value_heads", default: heads), headDim: try int("head_dim", default: hidden / Swift.max(heads, 1)),
                      vocabularySize: 0, contextLength: try int("max_position_embeddings"), slidingWindow: window,
                      ropeTheta: theta, ropeScaling: scaling, normEps: Float(try positive("rms_norm_eps", default: 1e-6)),
                      attentionBias: attentionBias || architecture == .qwen2, outputBias: attentionBias,
                      mlpBias: try bool("mlp_bias", default: false), tiedEmbeddings: try bool("tie_word_embeddings", default: false),
                      tanhGELU: false)
        }
        declaredVocabulary = try int("vocab_size")
        try finish(store: store)
    }
}
