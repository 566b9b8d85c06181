import WeightStore

extension Tokenizer {
    /// The tokenizer of a packed model folder: tokenizer.json where there is one (with
    /// tokenizer_config.json's options over it, as transformers applies them), else vocab.txt
    /// with tokenizer_config.json.
    public init(store: WeightStore) throws {
        try self.init(files: store.file)
    }

    /// `file` returns the text of a file of the model folder, or nil.
    public init(files file: (String) -> String?) throws {
        let config = try file("tokenizer_config.json").map(TokenizerConfig.init(json:)) ?? TokenizerConfig()
        if let json = file("tokenizer.json") {
            try self.init(tokenizerJSON: json, overrides: config)
        } else if let vocab = file("vocab.txt") {
            try self.init(vocabularyText: vocab, config: config)
        } else {
            throw ModelError.notAModel(kind: "tokenizer", reason: "neither tokenizer.json nor vocab.txt inside")
        }
    }
}
