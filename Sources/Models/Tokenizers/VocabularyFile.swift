/// Builds a Tokenizer for a folder without tokenizer.json from vocab.txt and
/// tokenizer_config.json, the way transformers converts those files: BERT's normalizer and
/// pre-tokenizer, WordPiece, and the special tokens of the tokenizer class.
extension Tokenizer {
    public init(vocabularyText: String, config: TokenizerConfig = TokenizerConfig()) throws {
        let entries = Self.vocabularyLines(vocabularyText)
        let tokenizerClass = config.tokenizerClass ?? "BertTokenizer"
        let robertaStyle: Bool
        switch tokenizerClass {
        case "BertTokenizer", "BertTokenizerFast", "DistilBertTokenizer", "DistilBertTokenizerFast",
             "ElectraTokenizer", "ElectraTokenizerFast": robertaStyle = false
        case "MPNetTokenizer", "MPNetTokenizerFast": robertaStyle = true
        default:
            throw ModelError.badConfig("tokenizer_config.json names \(tokenizerClass), which wpack cannot build from vocab.txt (a tokenizer.json is needed)")
        }
        let unk = config.unkToken ?? "[UNK]"
        let cls = config.clsToken ?? (robertaStyle ? "<s>" : "[CLS]")
        let sep = config.sepToken ?? (robertaStyle ? "</s>" : "[SEP]")
        let pad = config.padToken ?? (robertaStyle ? "<pad>" : "[PAD]")
        let mask = config.maskToken ?? (robertaStyle ? "<mask>" : "[MASK]")
        let model = try WordPiece(entries: entries, unkToken: unk)
        func id(_ token: String) throws -> Int {
            guard let i = model.id(of: token) else { throw ModelError.badConfig("vocab.txt has no \(token) token") }
            return i
        }
        let clsID = try id(cls), sepID = try id(sep)
        var added: [AddedToken] = []
        for token in [pad, unk, cls, sep, mask] where !added.contains(where: { $0.content == token }) {
            if let i = model.id(of: token) {
                added.append(AddedToken(content: token, id: i, special: true, lstrip: robertaStyle && token == mask, normalized: false))
            }
        }
        let post: PostProcessor = robertaStyle
            ? .template(single: [.special(cls, typeId: 0), .sequence(isFirst: true, typeId: 0), .special(sep, typeId: 0)],
                        pair: [.special(cls, typeId: 0), .sequence(isFirst: true, typeId: 0), .special(sep, typeId: 0),
                               .special(sep, typeId: 0), .sequence(isFirst: false, typeId: 0), .special(sep, typeId: 0)],
                        specialTokens: [cls: [clsID], sep: [sepID]])
            : .template(single: [.special(cls, typeId: 0), .sequence(isFirst: true, typeId: 0), .special(sep, typeId: 0)],
                        pair: [.special(cls, typeId: 0), .sequence(isFirst: true, typeId: 0), .special(sep, typeId: 0),
                               .sequence(isFirst: false, typeId: 1), .special(sep, typeId: 1)],
                        specialTokens: [cls: [clsID], sep: [sepID]])
        self.init(normalizer: .bert(cleanText: true, handleChineseChars: config.tokenizeChineseChars ?? true,
                                    stripAccents: config.stripAccents, lowercase: config.lowercase ?? true),
                  preTokenizer: .bert, model: .wordPiece(model), postProcessor: post,
                  decoder: .wordPiece(prefix: "##", cleanup: true), addedTokens: added,
                  maxLength: nil)
        // As the tokenizers library built from these files would: no truncation unless asked.
        modelMaxLength = config.modelMaxLength
        source = "vocab.txt"
    }

    /// vocab.txt: one token per line, lines ended by \n, \r\n or \r (Python's universal
    /// newlines, as transformers' load_vocab reads them); the line number is the id. A byte
    /// scan: Foundation's enumerateLines took a fifth of a cold `wpack embed`.
    static func vocabularyLines(_ text: String) -> [(String, Int)] {
        var entries: [(String, Int)] = []
        entries.reserveCapacity(32768)
        var copy = text
        copy.withUTF8 { bytes in
            func add(_ range: Range<Int>) {
                entries.append((String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self), entries.count))
            }
            var start = 0, i = 0
            while i < bytes.count {
                let b = bytes[i]
                if b == 10 || b == 13 {
                    add(start..<i)
                    if b == 13 && i + 1 < bytes.count && bytes[i + 1] == 10 { i += 1 }
                    start = i + 1
                }
                i += 1
            }
            if start < bytes.count { add(start..<bytes.count) }
        }
        return entries
    }
}
