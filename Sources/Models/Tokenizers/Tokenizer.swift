/// A text tokenizer assembled from tokenizer.json's parts (or, for older folders, from
/// vocab.txt and tokenizer_config.json): added tokens, normalizer, pre-tokenizer, model and
/// post-processor, run in the order and with the rules of the Hugging Face tokenizers library,
/// so that the ids are the ones that library gives.
public struct Tokenizer: Sendable {
    public enum Model: Sendable {
        case wordPiece(WordPiece)
        case bpe(BPE)
        case unigram(Unigram)
        /// SentencePiece's score-ordered BPE, as llama.cpp runs GGUF "llama" vocabularies.
        case sentencePiece(SentencePieceBPE)

        public var name: String {
            switch self {
            case .wordPiece: "WordPiece"
            case .bpe: "BPE"
            case .unigram: "Unigram"
            case .sentencePiece: "SentencePiece BPE"
            }
        }

        var vocabulary: [String] {
            switch self {
            case let .wordPiece(m): m.vocabulary
            case let .bpe(m): m.vocabulary
            case let .unigram(m): m.vocabulary
            case let .sentencePiece(m): m.vocabulary
            }
        }
    }

    public enum TruncationSide: Sendable { case left, right }

    public let normalizer: Normalizer?
    public let preTokenizer: PreTokenizer?
    public let model: Model
    public let postProcessor: PostProcessor?
    public let decoder: Decoder?
    let added: AddedVocabulary
    /// Token count (special tokens included) beyond which encode truncates; nil: no limit.
    public var maxLength: Int?
    public var truncationSide: TruncationSide = .right
    /// tokenizer_config.json's model_max_length, where it gives one: models cap their input
    /// with it when their own config does not (see EncoderConfig.tokenLimit).
    public var modelMaxLength: Int?
    /// What the tokenizer was built from ("tokenizer.json", "vocab.txt"), for summaries.
    public var source = "tokenizer.json"

    init(normalizer: Normalizer?, preTokenizer: PreTokenizer?, model: Model, postProcessor: PostProcessor?,
         decoder: Decoder?, addedTokens: [AddedToken], maxLength: Int?) {
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.added = AddedVocabulary(addedTokens, normalizer: normalizer)
        self.maxLength = maxLength
    }

    public var addedTokens: [AddedToken] { added.tokens }

    /// The largest id this tokenizer can produce: its vocabulary's, its added tokens' and its
    /// post-processor's special tokens'. A model whose embedding table is shorter would index
    /// past it, so loaders check this.
    public var largestID: Int {
        var largest = model.vocabulary.count - 1
        for t in added.tokens { largest = Swift.max(largest, t.id) }
        func specials(_ p: PostProcessor?) -> [Int] {
            switch p {
            case let .bert(cls, sep)?, let .roberta(cls, sep)?: [cls, sep]
            case let .template(_, _, tokens)?: tokens.values.flatMap { $0 }
            case let .sequence(steps)?: steps.flatMap { specials($0) }
            default: []
            }
        }
        return Swift.max(largest, specials(postProcessor).max() ?? -1)
    }

    /// The id of a token, added tokens first.
    public func id(of token: String) -> Int? {
        if let id = added.idByContent[Array(token.utf8)] { return id }
        switch model {
        case let .wordPiece(m): return m.id(of: token)
        case let .bpe(m): return m.id(of: token)
        case let .unigram(m): return m.id(of: token)
        case let .sentencePiece(m): return m.id(of: token)
        }
    }

    /// The text of a token id.
    public func token(of id: Int) -> String? {
        if let content = added.contentByID[id] { return content }
        let vocabulary = model.vocabulary
        return id >= 0 && id < vocabulary.count && !vocabulary[id].isEmpty ? vocabulary[id] : nil
    }

    /// The ids of the text alone: added tokens, normalization, pre-tokenization and the model;
    /// no special tokens, no truncation.
    public func tokenize(_ text: String) -> [Int] {
        var ids: [Int] = []
        let codePoints = text.codePoints
        var firstPiece = true
        for segment in added.split(codePoints, normalizedText: false) {
            switch segment {
            case let .token(id): ids.append(id); firstPiece = false
            case let .text(raw):
                let normalized = normalizer?.apply(raw) ?? raw
                for inner in added.split(normalized, normalizedText: true) {
                    switch inner {
                    case let .token(id): ids.append(id)
                    case let .text(piece):
                        // Empty text gives no tokens: the library's prepend (ByteLevel's and
                        // Metaspace's prefix) does nothing to an empty string.
                        if piece.isEmpty { break }
                        let pieces = preTokenizer?.split([piece], first: firstPiece) ?? [piece]
                        for p in pieces where !p.isEmpty { modelTokenize(p, into: &ids) }
                    }
                    firstPiece = false
                }
            }
        }
        return ids
    }

    @inline(__always)
    func modelTokenize(_ piece: [UInt32], into ids: inout [Int]) {
        switch model {
        case let .wordPiece(m): m.tokenize(piece, into: &ids)
        case let .bpe(m): m.tokenize(piece, into: &ids)
        case let .unigram(m): m.tokenize(piece, into: &ids)
        case let .sentencePiece(m): m.tokenize(piece, into: &ids)
        }
    }

    /// One text, or a pair (a query and a document, say), as the model takes it: truncated to
    /// `maxLength` (longest first for a pair) and with the post-processor's special tokens.
    public func encode(_ text: String, pair: String? = nil, addSpecialTokens: Bool = true) -> Encoding {
        var a = tokenize(text)
        var b = pair.map(tokenize)
        if let maxLength {
            let room = Swift.max(0, maxLength - (addSpecialTokens ? (postProcessor?.addedTokens(pair: b != nil) ?? 0) : 0))
            if let second = b, a.count + second.count > room {
                // Longest first, as the library computes it: the shorter text kept whole when
                // the longer can take the rest, else both cut to half (the odd token to the
                // second of the two by length).
                var n1 = Swift.min(a.count, second.count), n2 = Swift.max(a.count, second.count)
                n2 = n1 > room ? n1 : Swift.max(n1, room - n1)
                if n1 + n2 > room { n1 = room / 2; n2 = n1 + room % 2 }
                if a.count > second.count { swap(&n1, &n2) }
                a = truncated(a, to: Swift.min(a.count, n1))
                b = truncated(second, to: Swift.min(second.count, n2))
            } else if b == nil, a.count > room {
                a = truncated(a, to: room)
            }
        }
        let ea = Encoding(ids: a), eb = b.map { Encoding(ids: $0) }
        guard addSpecialTokens, let postProcessor else { return eb.map { ea + $0.withType(1) } ?? ea }
        return postProcessor.process(ea, eb)
    }

    private func truncated(_ ids: [Int], to count: Int) -> [Int] {
        truncationSide == .right ? Array(ids.prefix(count)) : Array(ids.suffix(count))
    }

    /// Text from ids, special tokens left out unless asked for.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        let tokens = ids.compactMap { id -> String? in
            if skipSpecialTokens && added.specialIDs.contains(id) { return nil }
            return token(of: id)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decode(tokens).joined()
    }
}
