import Foundation
import WeightStore

/// BERT's tokenizer: the basic tokenizer of an uncased model (clean control characters and
/// whitespace, split CJK ideographs, lower-case, strip accents, split punctuation; special tokens
/// written in the text stay those tokens), then greedy longest-match WordPiece with `##`
/// continuations. Reads the vocabulary the .wpk keeps (`file:vocab.txt`).
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: [String: Int]
    public let lowercase: Bool
    public let maxLength: Int
    public let cls: Int, sep: Int, unk: Int, pad: Int
    /// Words longer than this many characters become [UNK], as in BERT.
    public static let maxWordCharacters = 100
    private let specials: Set<String>

    public init(vocabularyText: String, lowercase: Bool = true, maxLength: Int = 512) throws {
        // One token per line, lines ended by \n, \r\n or \r (Python's universal newlines, as
        // HF's load_vocab reads them). A byte scan: Foundation's enumerateLines took a fifth
        // of a cold `wpack embed`.
        var vocabulary: [String: Int] = [:]
        vocabulary.reserveCapacity(32768)
        var index = 0
        var text = vocabularyText
        text.withUTF8 { bytes in
            func add(_ range: Range<Int>) {
                let line = String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
                // The first occurrence of a token wins (HF's vocab loader keeps the last; the
                // standard BERT vocabularies have no duplicates).
                if vocabulary[line] == nil { vocabulary[line] = index }
                index += 1
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
        func id(_ token: String) throws -> Int {
            guard let i = vocabulary[token] else { throw ModelError.badConfig("vocab.txt has no \(token) token") }
            return i
        }
        self.vocabulary = vocabulary
        self.lowercase = lowercase
        self.maxLength = maxLength
        cls = try id("[CLS]"); sep = try id("[SEP]"); unk = try id("[UNK]"); pad = try id("[PAD]")
        specials = Set(["[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]"].filter { vocabulary[$0] != nil })
    }

    public init(store: WeightStore, config: BertConfig) throws {
        guard let text = store.metadata["file:vocab.txt"] else {
            throw ModelError.notAModel(kind: "BERT sentence encoder", reason: "no vocab.txt inside")
        }
        try self.init(vocabularyText: text, lowercase: config.lowercase, maxLength: config.maxSequenceLength)
    }

    /// Token ids with [CLS] and [SEP], truncated to `maxLength`.
    public func encode(_ text: String) -> [Int] {
        var ids = [cls]
        for word in basicTokens(text) {
            if ids.count >= maxLength - 1 { break }
            ids += wordPieces(word)
        }
        if ids.count > maxLength - 1 { ids.removeLast(ids.count - (maxLength - 1)) }
        return ids + [sep]
    }

    // MARK: basic tokenizer

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }

    /// Words after cleaning, CJK splitting, whitespace splitting, lower-casing, accent
    /// stripping and punctuation splitting. Special tokens come through untouched.
    func basicTokens(_ text: String) -> [String] {
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
            if Self.isWhitespace(s) { cleaned.append(" "); continue }
            if Self.isCJK(s) { cleaned.append(" "); cleaned.append(s); cleaned.append(" "); continue }
            cleaned.append(s)
        }
        var words: [String] = []
        for raw in String(cleaned).split(separator: " ", omittingEmptySubsequences: true) {
            var word = String(raw)
            if specials.contains(word) { words.append(word); continue }
            if lowercase {
                word = word.lowercased()
                // Strip accents: canonical decomposition, then drop the combining marks.
                word = String(String.UnicodeScalarView(word.decomposedStringWithCanonicalMapping.unicodeScalars
                    .filter { $0.properties.generalCategory != .nonspacingMark }))
            }
            var current = String.UnicodeScalarView()
            for s in word.unicodeScalars {
                if Self.isPunctuation(s) {
                    if !current.isEmpty { words.append(String(current)); current = String.UnicodeScalarView() }
                    words.append(String(s))
                } else {
                    current.append(s)
                }
            }
            if !current.isEmpty { words.append(String(current)) }
        }
        return words
    }

    // MARK: WordPiece

    func wordPieces(_ word: String) -> [Int] {
        if let id = vocabulary[word] { return [id] }
        let scalars = Array(word.unicodeScalars)
        if scalars.count > Self.maxWordCharacters { return [unk] }
        var pieces: [Int] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var found: Int?
            while start < end {
                var piece = String(String.UnicodeScalarView(scalars[start..<end]))
                if start > 0 { piece = "##" + piece }
                if let id = vocabulary[piece] { found = id; break }
                end -= 1
            }
            guard let id = found else { return [unk] }
            pieces.append(id)
            start = end
        }
        return pieces
    }
}
