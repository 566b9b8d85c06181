import WeightStore

extension DecoderConfig {
    /// From the metadata llama.cpp's converter writes (`general.architecture` and that
    /// architecture's keys).
    init(gguf store: WeightStore) throws {
        func string(_ key: String) -> String? { if case let .string(s)? = store.metadataValue(key) { s } else { nil } }
        func number(_ key: String) -> Double? {
            switch store.metadataValue(key) {
            case let .int(i)?: Double(i)
            case let .double(d)?: d
            default: nil
            }
        }
        guard let arch = string("general.architecture") else {
            throw ModelError.notAModel(kind: "text decoder", reason: "general.architecture is not a string")
        }
        guard let architecture = DecoderArchitecture(rawValue: arch) else {
            throw ModelError.notAModel(kind: "text decoder wpack implements",
                                       reason: "general.architecture is '\(arch)'; wpack runs llama, qwen2 and gpt2 GGUF files")
        }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            if let v = number("\(arch).\(key)") {
                guard v >= 1, v < 2_147_483_648, v.rounded() == v else { throw ModelError.badConfig("\(arch).\(key) is \(v), not a positive integer") }
                return Int(v)
            }
            if let value { return value }
            throw ModelError.badConfig("the metadata lacks \(arch).\(key)")
        }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        if architecture == .gpt2 {
            // llama.cpp's GPT-2 graph: LayerNorm, learned positions, biases everywhere, GELU
            // in its tanh form (ggml_gelu), as transformers' gelu_new.
            guard let eps = number("gpt2.attention.layer_norm_epsilon"), eps > 0 else {
                throw ModelError.badConfig("the metadata lacks a positive gpt2.attention.layer_norm_epsilon")
            }
            let kv = try int("attention.head_count_kv", default: heads)
            guard kv == heads else { throw ModelError.badConfig("gpt2.attention.head_count_kv is \(kv) of \(heads) heads: GPT-2 has none grouped") }
            self.init(architecture: .gpt2, modelType: arch, layout: .gguf, layers: try int("block_count"), hiddenSize: hidden,
                      intermediateSize: try int("feed_forward_length"), heads: heads, kvHeads: heads,
                      headDim: hidden / Swift.max(heads, 1), vocabularySize: 0, contextLength: try int("context_length"),
                      slidingWindow: nil, ropeTheta: 10_000, ropeScaling: .none, normEps: Float(eps), attentionBias: true,
                      outputBias: true, mlpBias: true, tiedEmbeddings: store.info("output.weight") == nil, tanhGELU: true)
            declaredVocabulary = number("gpt2.vocab_size").map { Int($0) }
            try finish(store: store)
            return
        }
        let headDim = try int("attention.key_length", default: hidden / Swift.max(heads, 1))
        let valueDim = try int("attention.value_length", default: headDim)
        guard valueDim == headDim else {
            throw ModelError.badConfig("heads of \(headDim) (keys) and \(valueDim) (values) features: wpack runs equal widths")
        }
        let rotated = try int("rope.dimension_count", default: headDim)
        guard rotated == headDim else {
            throw ModelError.badConfig("\(arch).rope.dimension_count is \(rotated) of \(headDim) features: partial rotary embeddings are not implemented")
        }
        let theta = number("\(arch).rope.freq_base") ?? 10_000
        guard theta > 1 else { throw ModelError.badConfig("\(arch).rope.freq_base is \(theta)") }
        var scaling = RopeScaling.none
        switch string("\(arch).rope.scaling.type") ?? "none" {
        case "none": break
        case "linear":
            guard let factor = number("\(arch).rope.scaling.factor"), factor >= 1 else {
                throw ModelError.badConfig("linear rope scaling without a factor >= 1 (\(arch).rope.scaling.factor)")
            }
            scaling = .linear(factor: factor)
        case let other:
            throw ModelError.badConfig("\(arch).rope.scaling.type '\(other)' is not implemented (wpack runs none and linear)")
        }
        if store.info("rope_freqs.weight") != nil {
            // Llama 3.1's scaling, as llama.cpp's converter stores it: one divisor per frequency.
            guard case .none = scaling else { throw ModelError.badConfig("both rope_freqs.weight and \(arch).rope.scaling.type are given") }
            let divisors = try store.weight("rope_freqs.weight", shape: [headDim / 2]).materialized().scalars
            scaling = .frequencyDivisors(divisors)
        }
        guard let eps = number("\(arch).attention.layer_norm_rms_epsilon"), eps > 0 else {
            throw ModelError.badConfig("the metadata lacks a positive \(arch).attention.layer_norm_rms_epsilon")
        }
        self.init(architecture: architecture, modelType: arch, layout: .gguf, layers: try int("block_count"), hiddenSize: hidden,
                  intermediateSize: try int("feed_forward_length"), heads: heads, kvHeads: try int("attention.head_count_kv", default: heads),
                  headDim: headDim, vocabularySize: 0, contextLength: try int("context_length"), slidingWindow: nil,
                  ropeTheta: theta, ropeScaling: scaling, normEps: Float(eps), attentionBias: architecture == .qwen2,
                  outputBias: false, mlpBias: false, tiedEmbeddings: store.info("output.weight") == nil, tanhGELU: false)
        declaredVocabulary = number("\(arch).vocab_size").map { Int($0) }
        try finish(store: store)
    }
}
