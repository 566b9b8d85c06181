import WeightStore

/// What a packed .wpk holds as a model, and which wpack commands will run it: the pack
/// summary, and the check that refuses at pack time a folder that would fail at embed time.
public struct ModelSummary: Sendable {
    /// Lines for a person ("encoder: bert, 6 layers, hidden 384").
    public var lines: [String] = []
    /// The commands that will run the store ("embed").
    public var runsWith: [String] = []
    /// Why the store is not a model wpack runs, when it looks like one (a model folder with a
    /// config.json or modules.json); nil when it runs or is plain tensors.
    public var problem: String?

    public init(store: WeightStore) {
        let meta = store.metadata
        if meta[SequentialModel.metadataKey] != nil {
            do {
                _ = try SequentialModel(store: store)
                lines.append("model: sequential layer list")
                runsWith = ["run"]
            } catch {
                problem = "\(error)"
            }
            return
        }
        let causalFolder = meta["file:config.json"].map { config in
            config.contains("ForCausalLM") || config.contains("LMHeadModel")
                || (meta["model.type"].map { DecoderConfig.huggingFaceTypes[$0] != nil } ?? false)
        } ?? false
        if meta["general.architecture"] != nil || causalFolder {
            do {
                let decoder = try TextDecoder(store: store)
                let c = decoder.config
                let kv = c.kvHeads == c.heads ? "" : " (\(c.kvHeads) key/value)"
                lines.append("decoder: \(c.modelType) (\(c.architecture.rawValue) graph), \(c.layers) layers, hidden \(c.hiddenSize), \(c.heads) heads\(kv), up to \(decoder.maxPositions) positions")
                lines.append("tokenizer: \(decoder.tokenizer.model.name) (\(decoder.tokenizer.source)), \(c.vocabularySize) token rows; chat template: \(decoder.chatTemplate == nil ? "none" : "yes")")
                runsWith = ["generate", "bench generate"]
            } catch {
                // A GGUF file may hold tensors of a model wpack does not run; they still pack.
                if causalFolder { problem = "\(error)" } else { lines.append("not a decoder wpack runs: \(error)") }
            }
            return
        }
        if let config = meta["file:config.json"], config.contains("ForSequenceClassification") {
            do {
                let ce = try CrossEncoder(store: store)
                let c = ce.config
                lines.append("cross-encoder: \(c.architecture.rawValue), \(c.layers) layers, hidden \(c.hiddenSize), up to \(ce.maxLength) tokens a pair")
                lines.append("tokenizer: \(ce.tokenizer.model.name) (\(ce.tokenizer.source))")
                lines.append("labels: \(ce.labels.joined(separator: ", ")); activation \(ce.activation)")
                runsWith = ["rerank"]
            } catch {
                problem = "\(error)"
            }
            return
        }
        let looksLikeEncoder = meta["file:modules.json"] != nil || meta["file:sentence_bert_config.json"] != nil
            || (meta["model.type"].map { EncoderArchitecture(rawValue: $0) != nil } ?? false)
        guard meta["file:config.json"] != nil || looksLikeEncoder else { return }
        do {
            let encoder = try SentenceEncoder(store: store)
            let c = encoder.config
            lines.append("encoder: \(c.architecture.rawValue), \(c.layers) layers, hidden \(c.hiddenSize), \(c.heads) heads, up to \(encoder.maxLength) tokens")
            lines.append("tokenizer: \(encoder.tokenizer.model.name) (\(encoder.tokenizer.source))")
            var pipeline = encoder.pooling.modes.map(\.rawValue).joined(separator: "+") + " pooling"
            for step in encoder.tail {
                switch step {
                case let .dense(d): pipeline += ", dense \(d.linear.inFeatures)->\(d.linear.outFeatures) \(d.activation)"
                case .normalize: pipeline += ", normalize"
                }
            }
            if !encoder.modules.fromModulesJSON { pipeline += " (no modules.json: sentence-transformers' default)" }
            lines.append("sentence embedding: \(pipeline); \(encoder.dimension) dimensions")
            if !encoder.modules.prompts.isEmpty {
                lines.append("prompts: " + encoder.modules.prompts.keys.sorted().joined(separator: ", "))
            }
            runsWith = ["embed"]
        } catch {
            if looksLikeEncoder { problem = "\(error)" } else {
                lines.append("not a model wpack runs: \(error)")
            }
        }
    }
}
