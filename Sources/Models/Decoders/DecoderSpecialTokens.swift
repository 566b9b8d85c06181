import WeightStore

/// What a decoder's files say about starting and ending text: the chat template, the ids
/// that end a generation, and the BOS and EOS strings a template may write.
struct DecoderSpecialTokens {
    var chatTemplate: String?
    var endOfSequenceIDs: Set<Int> = []
    var bosToken: String?
    var eosToken: String?

    /// llama.cpp's keys (tokenizer.ggml.*_token_id, tokenizer.chat_template).
    init(gguf store: WeightStore, tokenizer: Tokenizer) {
        if case let .string(t)? = store.metadataValue("tokenizer.chat_template") { chatTemplate = t }
        func id(_ key: String) -> Int? { if case let .int(i)? = store.metadataValue("tokenizer.ggml.\(key)_token_id") { Int(i) } else { nil } }
        var ends = Set([id("eos"), id("eot"), id("eom")].compactMap { $0 })
        // ChatML models end a turn with <|im_end|>, which llama.cpp also treats as an end of
        // generation when the vocabulary marks it a control token.
        for name in ["<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"] { if let i = tokenizer.id(of: name) { ends.insert(i) } }
        endOfSequenceIDs = ends
        bosToken = id("bos").flatMap(tokenizer.token(of:))
        eosToken = id("eos").flatMap(tokenizer.token(of:))
    }

    /// A Hugging Face folder's: the template from chat_template.jinja or tokenizer_config.json,
    /// the end ids that transformers' generate stops at (generation_config.json's, else
    /// config.json's) and the tokenizer's eos_token.
    init(folder store: WeightStore, tokenizer: Tokenizer) throws {
        func json(_ name: String) throws -> JSONValue? {
            guard let text = store.file(name) else { return nil }
            do { return try JSONValue.parse(text) } catch { throw ModelError.badConfig("\(name): \(error)") }
        }
        let config = try json("tokenizer_config.json")
        func token(_ key: String) -> String? { config?[key]?.string ?? config?[key]?["content"]?.string }
        bosToken = token("bos_token")
        eosToken = token("eos_token")
        if let file = store.file("chat_template.jinja") {
            chatTemplate = file
        } else if let t = config?["chat_template"] {
            if let text = t.string {
                chatTemplate = text
            } else if let named = t.array {
                // Several named templates: transformers uses "default" when none is asked for.
                let pairs = named.compactMap { e -> (String, String)? in
                    guard let n = e["name"]?.string, let s = e["template"]?.string else { return nil }
                    return (n, s)
                }
                chatTemplate = pairs.first { $0.0 == "default" }?.1
            }
        }
        func ids(_ v: JSONValue?) -> [Int] {
            if let i = v?.int { return [i] }
            return v?.array?.compactMap(\.int) ?? []
        }
        var ends = ids(try json("generation_config.json")?["eos_token_id"])
        if ends.isEmpty { ends = ids(try json("config.json")?["eos_token_id"]) }
        if let eos = eosToken, let id = tokenizer.id(of: eos) { ends.append(id) }
        endOfSequenceIDs = Set(ends)
    }
}
