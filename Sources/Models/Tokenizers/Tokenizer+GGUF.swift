import WeightStore

/// The tokenizer a GGUF file carries in its `tokenizer.ggml.*` metadata (kept in the .wpk by
/// `wpack pack MODEL.gguf`), built as llama.cpp runs it: the vocabulary, the merges in rank
/// order, the pre-tokenizer llama.cpp names by `tokenizer.ggml.pre`, control and user-defined
/// tokens matched in the text as added tokens, and the BOS/EOS the file asks to add.
///
/// Two kinds (tokenizer.ggml.model): byte-level BPE ("gpt2"), and SentencePiece's BPE ("llama":
/// spaces written as "▁" with one before the text, merges ordered by tokenizer.ggml.scores,
/// unknown characters as <0xXX> byte tokens). What llama.cpp would run differently is refused
/// by name rather than approximated: another tokenizer model (`bert`, `t5` ...) or a
/// pre-tokenizer outside the table below.
extension Tokenizer {
    /// The pre-tokenizers of byte-level BPE vocabularies, by llama.cpp's names for them.
    static func ggufPreTokenizer(_ name: String) throws -> PreTokenizer {
        let gpt2 = PreTokenizer.byteLevel(addPrefixSpace: false, useRegex: true)
        switch name {
        case "gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jais":
            return gpt2
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva":
            // llama.cpp's first expression, \p{N}, isolates every number character: that is
            // the Digits pre-tokenizer with individual digits.
            return .sequence([.digits(individual: true), gpt2])
        case "llama3", "llama-bpe", "dbrx", "smaug-bpe", "falcon3", "pixtral":
            return try .sequence([
                .split(SplitPattern(regex: #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#),
                       behavior: .isolated, invert: false),
                .byteLevel(addPrefixSpace: false, useRegex: false),
            ])
        case "qwen2", "stablelm2", "deepseek-r1-qwen", "hunyuan", "megrez":
            return try .sequence([
                .split(SplitPattern(regex: #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#),
                       behavior: .isolated, invert: false),
                .byteLevel(addPrefixSpace: false, useRegex: false),
            ])
        default:
            throw ModelError.badConfig("GGUF pre-tokenizer '\(name)' (tokenizer.ggml.pre); wpack splits text as llama.cpp does for: gpt2, gpt-2, phi-2, mpt, olmo, jais, smollm, starcoder, refact, command-r, codeshell, exaone, minerva, llama3, llama-bpe, dbrx, smaug-bpe, falcon3, pixtral, qwen2, stablelm2, deepseek-r1-qwen, hunyuan, megrez")
        }
    }

    /// `value` returns a metadata value of the store; arrays are JSON text, as the GGUF import
    /// keeps them.
    public init(ggufMetadata value: (String) -> MetadataValue?) throws {
        func string(_ key: String) -> String? { if case let .string(s)? = value(key) { s } else { nil } }
        func int(_ key: String) -> Int? { if case let .int(i)? = value(key) { Int(exactly: i) } else { nil } }
        func bool(_ key: String) -> Bool? { if case let .bool(b)? = value(key) { b } else { nil } }
        func array(_ key: String) throws -> [JSONValue]? {
            guard let text = string(key) else {
                if value(key) != nil { throw ModelError.badConfig("GGUF metadata \(key) is not an array") }
                return nil
            }
            do {
                guard case let .array(items) = try JSONValue.parse(text) else { throw ModelError.badConfig("GGUF metadata \(key) is not an array") }
                return items
            } catch let e as ModelError { throw e } catch { throw ModelError.badConfig("GGUF metadata \(key): \(error)") }
        }

        guard let kind = string("tokenizer.ggml.model") else {
            throw ModelError.notAModel(kind: "GGUF tokenizer", reason: "the store has no tokenizer.ggml.model")
        }
        guard kind == "gpt2" || kind == "llama" else {
            throw ModelError.badConfig("GGUF tokenizer model '\(kind)' (tokenizer.ggml.model): wpack reads byte-level BPE ('gpt2') and SentencePiece BPE ('llama') vocabularies; the others are not implemented")
        }
        guard let tokenItems = try array("tokenizer.ggml.tokens"), !tokenItems.isEmpty else {
            throw ModelError.badConfig("GGUF metadata tokenizer.ggml.tokens is missing or empty")
        }
        var tokens: [String] = []
        tokens.reserveCapacity(tokenItems.count)
        for (i, item) in tokenItems.enumerated() {
            guard let t = item.string else { throw ModelError.badConfig("GGUF metadata tokenizer.ggml.tokens[\(i)] is not a string") }
            tokens.append(t)
        }
        var types = [Int](repeating: 1, count: tokens.count)
        if let items = try array("tokenizer.ggml.token_type") {
            guard items.count == tokens.count else {
                throw ModelError.badConfig("GGUF metadata tokenizer.ggml.token_type has \(items.count) entries for \(tokens.count) tokens")
            }
            for (i, item) in items.enumerated() {
                guard let t = item.exactInt, (0...6).contains(t) else {
                    throw ModelError.badConfig("GGUF metadata tokenizer.ggml.token_type[\(i)] is not a token type (0-6)")
                }
                types[i] = t
            }
        }
        let specialIDs = Set(["bos", "eos", "unknown", "padding", "eot", "eom"].compactMap { int("tokenizer.ggml.\($0)_token_id") })
        for key in ["bos", "eos", "unknown", "padding", "eot", "eom"] {
            if let id = int("tokenizer.ggml.\(key)_token_id"), !(0..<tokens.count).contains(id) {
                throw ModelError.badConfig("GGUF metadata tokenizer.ggml.\(key)_token_id \(id) is outside the \(tokens.count) tokens")
            }
        }
        // Control tokens (type 3) and user-defined ones (type 4), and for SentencePiece the
        // unknown token (type 2), are matched in the text before the model sees it, as llama.cpp
        // does when it parses special tokens; all but user-defined ones are left out of decoded
        // text, as are the named special ids.
        var added: [AddedToken] = []
        for (id, t) in types.enumerated() where t == 3 || t == 4 || (t == 2 && kind == "llama") || (specialIDs.contains(id) && t == 1) {
            added.append(AddedToken(content: tokens[id], id: id, special: t != 4, normalized: false))
        }
        let model: Model, normalizer: Normalizer?, preTokenizer: PreTokenizer?, decoder: Decoder, detail: String
        if kind == "llama" {
            guard let items = try array("tokenizer.ggml.scores"), items.count == tokens.count else {
                throw ModelError.badConfig("GGUF SentencePiece tokenizer without one tokenizer.ggml.scores entry per token")
            }
            var scores: [Float] = []
            scores.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                guard let v = item.double else { throw ModelError.badConfig("GGUF metadata tokenizer.ggml.scores[\(i)] is not a number") }
                scores.append(Float(v))
            }
            model = .sentencePiece(try SentencePieceBPE(tokens: tokens, scores: scores, unknownID: int("tokenizer.ggml.unknown_token_id")))
            // llama.cpp writes spaces as U+2581 and, unless the file says not to, puts one
            // before the text and after each special token.
            let space: [UInt32] = [0x2581]
            let escape = Normalizer.replace(SplitPattern(literal: " "), content: space)
            let prefix = bool("tokenizer.ggml.add_space_prefix") ?? true
            normalizer = prefix ? .sequence([.prepend(space), escape]) : escape
            preTokenizer = nil
            var steps: [Decoder] = [.replace(SplitPattern(literal: "\u{2581}"), content: " "), .byteFallback, .fuse]
            if prefix { steps.append(.strip(content: 0x20, start: 1, stop: 0)) }
            decoder = .sequence(steps)
            detail = prefix ? "space prefix" : "no space prefix"
        } else {
            var merges: [(String, String)] = []
            if let items = try array("tokenizer.ggml.merges") {
                merges.reserveCapacity(items.count)
                for (i, item) in items.enumerated() {
                    // llama.cpp cuts at the first space after the first character, since a
                    // byte-level token never holds a space but may start with one in other vocabularies.
                    guard let m = item.string, let cut = m.utf8.dropFirst().firstIndex(of: UInt8(ascii: " ")) else {
                        throw ModelError.badConfig("GGUF metadata tokenizer.ggml.merges[\(i)] is not two tokens separated by a space")
                    }
                    merges.append((String(m[..<cut]), String(m[m.utf8.index(after: cut)...])))
                }
            }
            guard let pre = string("tokenizer.ggml.pre") else {
                throw ModelError.badConfig("GGUF tokenizer without tokenizer.ggml.pre: llama.cpp falls back to a generic split that the model was not trained with; wpack refuses to guess")
            }
            preTokenizer = try Self.ggufPreTokenizer(pre)
            let entries = tokens.enumerated().map { ($0.element, $0.offset) }
            model = .bpe(try BPE(entries: entries, merges: merges, unkToken: nil, continuingSubwordPrefix: nil, endOfWordSuffix: nil,
                                 fuseUnk: false, byteFallback: false, ignoreMerges: false))
            normalizer = nil
            decoder = .byteLevel
            detail = "pre-tokenizer \(pre)"
        }

        let bos = int("tokenizer.ggml.bos_token_id"), eos = int("tokenizer.ggml.eos_token_id")
        // llama.cpp adds a BOS to SentencePiece vocabularies unless the file says not to.
        let addBos = bool("tokenizer.ggml.add_bos_token") ?? (kind == "llama"), addEos = bool("tokenizer.ggml.add_eos_token") ?? false
        var single: [PostProcessor.Piece] = [.sequence(isFirst: true, typeId: 0)]
        var specials: [String: [Int]] = [:]
        if addBos {
            guard let bos else { throw ModelError.badConfig("GGUF metadata asks to add a BOS token (tokenizer.ggml.add_bos_token) but names none") }
            single.insert(.special("bos", typeId: 0), at: 0)
            specials["bos"] = [bos]
        }
        if addEos {
            guard let eos else { throw ModelError.badConfig("GGUF metadata asks to add an EOS token (tokenizer.ggml.add_eos_token) but names none") }
            single.append(.special("eos", typeId: 0))
            specials["eos"] = [eos]
        }
        // A pair (unused by decoders, kept for completeness) repeats the pattern for the second
        // text, as transformers' llama template does.
        let second = single.map { p -> PostProcessor.Piece in
            if case .sequence = p { return .sequence(isFirst: false, typeId: 0) }
            return p
        }
        let post: PostProcessor? = addBos || addEos ? .template(single: single, pair: single + second, specialTokens: specials) : nil
        self.init(normalizer: normalizer, preTokenizer: preTokenizer, model: model, postProcessor: post, decoder: decoder,
                  addedTokens: added, maxLength: nil)
        source = "GGUF metadata (\(kind), \(detail))"
    }

    /// The tokenizer of a store packed from a GGUF file.
    public init(ggufStore store: WeightStore) throws {
        try self.init(ggufMetadata: store.metadataValue)
    }
}
