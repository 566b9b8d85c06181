import WeightStore

/// Builds a Tokenizer from tokenizer.json, the tokenizers library's own serialization. Every
/// component type and option it does not implement is refused by name: a tokenizer that
/// silently skipped a step would give other ids.
extension Tokenizer {
    public init(tokenizerJSON text: String, overrides: TokenizerConfig = TokenizerConfig()) throws {
        let root: JSONValue
        do { root = try JSONValue.parse(text) } catch { throw ModelError.badConfig("tokenizer.json: \(error)") }
        guard root.pairs != nil else { throw ModelError.badConfig("tokenizer.json is not a JSON object") }
        let loader = TokenizerJSONLoader()

        var normalizer = try root["normalizer"].flatMap { $0.isNull ? nil : try loader.normalizer($0) }
        // transformers rebuilds a BERT-style normalizer from tokenizer_config.json's options
        // when they are given (do_lower_case, strip_accents, tokenize_chinese_chars), and
        // sentence-transformers tokenizes through transformers: follow it.
        if case let .bert(clean, chinese, strip, lower)? = normalizer {
            normalizer = .bert(cleanText: clean, handleChineseChars: overrides.tokenizeChineseChars ?? chinese,
                               stripAccents: overrides.stripAccentsGiven ? overrides.stripAccents : strip,
                               lowercase: overrides.lowercase ?? lower)
        }
        let preTokenizer = try root["pre_tokenizer"].flatMap { $0.isNull ? nil : try loader.preTokenizer($0) }
        guard let modelJSON = root["model"] else { throw ModelError.badConfig("tokenizer.json has no model") }
        let model = try loader.model(modelJSON)
        let postProcessor = try root["post_processor"].flatMap { $0.isNull ? nil : try loader.postProcessor($0) }
        let decoder = try root["decoder"].flatMap { $0.isNull ? nil : try loader.decoder($0) }
        var added: [AddedToken] = []
        for item in root["added_tokens"]?.array ?? [] {
            guard let content = item["content"]?.string, let id = item["id"]?.int else {
                throw ModelError.badConfig("tokenizer.json: an added token lacks its content or id")
            }
            let special = item["special"]?.bool ?? false
            added.append(AddedToken(content: content, id: id, special: special, singleWord: item["single_word"]?.bool ?? false,
                                    lstrip: item["lstrip"]?.bool ?? false, rstrip: item["rstrip"]?.bool ?? false,
                                    normalized: item["normalized"]?.bool ?? !special))
        }
        var maxLength: Int?
        if let truncation = root["truncation"], !truncation.isNull { maxLength = truncation["max_length"]?.int }
        self.init(normalizer: normalizer, preTokenizer: preTokenizer, model: model, postProcessor: postProcessor,
                  decoder: decoder, addedTokens: added, maxLength: maxLength)
        if let t = root["truncation"], !t.isNull, t["direction"]?.string == "Left" { truncationSide = .left }
        modelMaxLength = overrides.modelMaxLength
    }
}

/// The options of tokenizer_config.json that change how text is tokenized.
public struct TokenizerConfig: Sendable {
    public var lowercase: Bool?
    public var stripAccents: Bool?
    /// strip_accents may be given as null (follow lowercase), which differs from absent.
    public var stripAccentsGiven = false
    public var tokenizeChineseChars: Bool?
    public var clsToken: String?, sepToken: String?, padToken: String?, unkToken: String?, maskToken: String?
    public var tokenizerClass: String?
    public var modelMaxLength: Int?

    public init() {}

    public init(json text: String) throws {
        let root: JSONValue
        do { root = try JSONValue.parse(text) } catch { throw ModelError.badConfig("tokenizer_config.json: \(error)") }
        lowercase = root["do_lower_case"]?.bool
        if let s = root["strip_accents"] { stripAccentsGiven = true; stripAccents = s.bool }
        tokenizeChineseChars = root["tokenize_chinese_chars"]?.bool
        func token(_ key: String) -> String? { root[key]?.string ?? root[key]?["content"]?.string }
        clsToken = token("cls_token"); sepToken = token("sep_token"); padToken = token("pad_token")
        unkToken = token("unk_token"); maskToken = token("mask_token")
        tokenizerClass = root["tokenizer_class"]?.string
        // Values near 1e30 mean "no limit" in transformers.
        if let m = root["model_max_length"]?.double, m < 1e9 { modelMaxLength = Int(m) }
    }
}

struct TokenizerJSONLoader {
    func type(_ j: JSONValue, _ what: String) throws -> String {
        guard let t = j["type"]?.string else { throw ModelError.badConfig("tokenizer.json: a \(what) without a type") }
        return t
    }

    func unsupported(_ what: String, _ type: String) -> ModelError {
        ModelError.badConfig("tokenizer.json: the \(what) '\(type)' is not implemented by wpack")
    }

    func codePoints(_ j: JSONValue?, _ what: String) throws -> [UInt32] {
        guard let s = j?.string else { throw ModelError.badConfig("tokenizer.json: \(what) is not a string") }
        return s.codePoints
    }

    func normalizer(_ j: JSONValue) throws -> Normalizer {
        let t = try type(j, "normalizer")
        switch t {
        case "BertNormalizer":
            return .bert(cleanText: j["clean_text"]?.bool ?? true, handleChineseChars: j["handle_chinese_chars"]?.bool ?? true,
                         stripAccents: j["strip_accents"]?.bool, lowercase: j["lowercase"]?.bool ?? true)
        case "Lowercase": return .lowercase
        case "StripAccents": return .stripAccents
        case "NFC": return .unicode(.nfc)
        case "NFD": return .unicode(.nfd)
        case "NFKC": return .unicode(.nfkc)
        case "NFKD": return .unicode(.nfkd)
        case "Prepend": return .prepend(try codePoints(j["prepend"], "Prepend's prepend"))
        case "Strip": return .strip(left: j["strip_left"]?.bool ?? true, right: j["strip_right"]?.bool ?? true)
        case "Replace":
            return .replace(try pattern(j["pattern"], "Replace"), content: try codePoints(j["content"], "Replace's content"))
        case "Precompiled":
            guard let map = j["precompiled_charsmap"] else { throw ModelError.badConfig("tokenizer.json: Precompiled without a charsmap") }
            // An empty charsmap (null) normalizes nothing.
            if map.isNull { return .sequence([]) }
            guard let text = map.string else { throw ModelError.badConfig("tokenizer.json: Precompiled's charsmap is not a string") }
            return .precompiled(try PrecompiledCharsMap(base64: text))
        case "ByteLevel": return .byteLevel
        case "Sequence":
            guard let items = j["normalizers"]?.array else { throw ModelError.badConfig("tokenizer.json: Sequence without normalizers") }
            return .sequence(try items.map(normalizer))
        default: throw unsupported("normalizer", t)
        }
    }

    func pattern(_ j: JSONValue?, _ owner: String) throws -> SplitPattern {
        if let s = j?["String"]?.string { return SplitPattern(literal: s) }
        if let r = j?["Regex"]?.string { return try SplitPattern(regex: r) }
        throw ModelError.badConfig("tokenizer.json: \(owner)'s pattern is neither a String nor a Regex")
    }

    func preTokenizer(_ j: JSONValue) throws -> PreTokenizer {
        let t = try type(j, "pre-tokenizer")
        switch t {
        case "BertPreTokenizer": return .bert
        case "Whitespace": return .whitespace
        case "WhitespaceSplit": return .whitespaceSplit
        case "Punctuation": return .punctuation(try delimiter(j["behavior"]?.string ?? "Isolated"))
        case "Digits": return .digits(individual: j["individual_digits"]?.bool ?? false)
        case "Metaspace":
            let r = try codePoints(j["replacement"] ?? .string("\u{2581}"), "Metaspace's replacement")
            guard r.count == 1 else { throw ModelError.badConfig("tokenizer.json: Metaspace's replacement must be one character") }
            let scheme: PreTokenizer.PrependScheme
            if let s = j["prepend_scheme"]?.string {
                guard let p = PreTokenizer.PrependScheme(rawValue: s) else { throw unsupported("Metaspace prepend_scheme", s) }
                scheme = p
            } else {
                scheme = (j["add_prefix_space"]?.bool ?? true) ? .always : .never
            }
            return .metaspace(replacement: r[0], scheme: scheme, split: j["split"]?.bool ?? true)
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: j["add_prefix_space"]?.bool ?? true, useRegex: j["use_regex"]?.bool ?? true)
        case "Split":
            return .split(try pattern(j["pattern"], "Split"), behavior: try delimiter(j["behavior"]?.string ?? "Isolated"),
                          invert: j["invert"]?.bool ?? false)
        case "Sequence":
            guard let items = j["pretokenizers"]?.array else { throw ModelError.badConfig("tokenizer.json: Sequence without pretokenizers") }
            return .sequence(try items.map(preTokenizer))
        default: throw unsupported("pre-tokenizer", t)
        }
    }

    func delimiter(_ name: String) throws -> PreTokenizer.Delimiter {
        switch name {
        case "Removed": .removed
        case "Isolated": .isolated
        case "MergedWithPrevious": .mergedWithPrevious
        case "MergedWithNext": .mergedWithNext
        case "Contiguous": .contiguous
        default: throw unsupported("split behavior", name)
        }
    }

    /// A model's {token: id} vocabulary, in file order, ids checked.
    func vocabulary(_ j: JSONValue, _ model: String) throws -> [(String, Int)] {
        guard let vocab = j["vocab"]?.pairs else { throw ModelError.badConfig("tokenizer.json: \(model) without a vocab") }
        return try vocab.map { token, id in
            guard let i = id.int, i >= 0, i < 1 << 24 else { throw ModelError.badConfig("tokenizer.json: token '\(token)' has a bad id") }
            return (token, i)
        }
    }

    func model(_ j: JSONValue) throws -> Tokenizer.Model {
        // Old files have no type; a WordPiece model is the one with continuing_subword_prefix
        // and max_input_chars_per_word.
        let t = j["type"]?.string ?? (j["max_input_chars_per_word"] != nil ? "WordPiece" : "")
        switch t {
        case "WordPiece":
            return .wordPiece(try WordPiece(entries: try vocabulary(j, "WordPiece"), unkToken: j["unk_token"]?.string ?? "[UNK]",
                                            prefix: j["continuing_subword_prefix"]?.string ?? "##",
                                            maxInputCharsPerWord: j["max_input_chars_per_word"]?.int ?? 100))
        case "BPE":
            if let d = j["dropout"]?.double, d > 0 {
                throw ModelError.badConfig("tokenizer.json: BPE with dropout \(d) is random; wpack tokenizes deterministically only")
            }
            let entries = try vocabulary(j, "BPE")
            var merges: [(String, String)] = []
            for item in j["merges"]?.array ?? [] {
                if let pair = item.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
                    merges.append((a, b))
                } else if let line = item.string, let space = line.firstIndex(of: " ") {
                    merges.append((String(line[..<space]), String(line[line.index(after: space)...])))
                } else {
                    throw ModelError.badConfig("tokenizer.json: a BPE merge is neither \"a b\" nor [a, b]")
                }
            }
            return .bpe(try BPE(entries: entries, merges: merges, unkToken: j["unk_token"]?.string,
                                continuingSubwordPrefix: j["continuing_subword_prefix"]?.string,
                                endOfWordSuffix: j["end_of_word_suffix"]?.string, fuseUnk: j["fuse_unk"]?.bool ?? false,
                                byteFallback: j["byte_fallback"]?.bool ?? false, ignoreMerges: j["ignore_merges"]?.bool ?? false))
        case "Unigram":
            guard let vocab = j["vocab"]?.array else { throw ModelError.badConfig("tokenizer.json: Unigram without a vocab") }
            let entries = try vocab.map { item -> (String, Double) in
                guard let pair = item.array, pair.count == 2, let token = pair[0].string, let score = pair[1].double else {
                    throw ModelError.badConfig("tokenizer.json: a Unigram entry is not [token, score]")
                }
                return (token, score)
            }
            return .unigram(try Unigram(entries: entries, unkID: j["unk_id"]?.int, byteFallback: j["byte_fallback"]?.bool ?? false))
        default: throw unsupported("model", t.isEmpty ? "(untyped)" : t)
        }
    }

    func postProcessor(_ j: JSONValue) throws -> PostProcessor {
        let t = try type(j, "post-processor")
        func tokenID(_ key: String) throws -> Int {
            guard let pair = j[key]?.array, pair.count == 2, let id = pair[1].int else {
                throw ModelError.badConfig("tokenizer.json: \(t) lacks its \(key) token")
            }
            return id
        }
        switch t {
        case "BertProcessing": return .bert(cls: try tokenID("cls"), sep: try tokenID("sep"))
        case "RobertaProcessing": return .roberta(cls: try tokenID("cls"), sep: try tokenID("sep"))
        case "ByteLevel": return .offsetsOnly
        case "TemplateProcessing":
            var specials: [String: [Int]] = [:]
            for (name, value) in j["special_tokens"]?.pairs ?? [] {
                guard let ids = value["ids"]?.array?.compactMap(\.int) else { throw ModelError.badConfig("tokenizer.json: special token '\(name)' lacks ids") }
                specials[name] = ids
            }
            func pieces(_ key: String) throws -> [PostProcessor.Piece] {
                guard let items = j[key]?.array else { throw ModelError.badConfig("tokenizer.json: TemplateProcessing lacks '\(key)'") }
                return try items.map { item in
                    if let s = item["SpecialToken"] {
                        guard let id = s["id"]?.string, specials[id] != nil else { throw ModelError.badConfig("tokenizer.json: template names an unknown special token") }
                        return .special(id, typeId: s["type_id"]?.int ?? 0)
                    }
                    if let s = item["Sequence"] {
                        return .sequence(isFirst: s["id"]?.string != "B", typeId: s["type_id"]?.int ?? 0)
                    }
                    throw ModelError.badConfig("tokenizer.json: unknown template piece")
                }
            }
            return .template(single: try pieces("single"), pair: try pieces("pair"), specialTokens: specials)
        case "Sequence":
            guard let items = j["processors"]?.array else { throw ModelError.badConfig("tokenizer.json: Sequence without processors") }
            return .sequence(try items.map(postProcessor))
        default: throw unsupported("post-processor", t)
        }
    }

    func decoder(_ j: JSONValue) throws -> Decoder {
        let t = try type(j, "decoder")
        switch t {
        case "WordPiece": return .wordPiece(prefix: j["prefix"]?.string ?? "##", cleanup: j["cleanup"]?.bool ?? true)
        case "ByteLevel": return .byteLevel
        case "Metaspace":
            let r = try codePoints(j["replacement"] ?? .string("\u{2581}"), "Metaspace's replacement")
            guard r.count == 1 else { throw ModelError.badConfig("tokenizer.json: Metaspace's replacement must be one character") }
            var scheme: PreTokenizer.PrependScheme = (j["add_prefix_space"]?.bool ?? true) ? .always : .never
            if let p = j["prepend_scheme"]?.string {
                guard let known = PreTokenizer.PrependScheme(rawValue: p) else { throw unsupported("Metaspace prepend_scheme", p) }
                scheme = known
            }
            return .metaspace(replacement: r[0], prependScheme: scheme)
        case "Replace":
            guard let content = j["content"]?.string else { throw ModelError.badConfig("tokenizer.json: Replace decoder without content") }
            return .replace(try pattern(j["pattern"], "Replace"), content: content)
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            let c = try codePoints(j["content"] ?? .string(" "), "Strip's content")
            guard c.count == 1 else { throw ModelError.badConfig("tokenizer.json: Strip's content must be one character") }
            return .strip(content: c[0], start: j["start"]?.int ?? 0, stop: j["stop"]?.int ?? 0)
        case "BPEDecoder": return .bpe(suffix: j["suffix"]?.string ?? "</w>")
        case "Sequence":
            guard let items = j["decoders"]?.array else { throw ModelError.badConfig("tokenizer.json: Sequence without decoders") }
            return .sequence(try items.map(decoder))
        default: throw unsupported("decoder", t)
        }
    }
}
