/// A token of tokenizer.json's `added_tokens`: matched in the text before the model sees it,
/// as the tokenizers library matches it (leftmost-longest, with its strip and word options).
public struct AddedToken: Sendable, Equatable {
    public var content: String
    public var id: Int
    public var special: Bool
    public var singleWord = false
    public var lstrip = false
    public var rstrip = false
    /// Matched in the normalized text (true) or in the raw text before normalization (false).
    public var normalized: Bool

    public init(content: String, id: Int, special: Bool, singleWord: Bool = false, lstrip: Bool = false, rstrip: Bool = false, normalized: Bool? = nil) {
        self.content = content
        self.id = id
        self.special = special
        self.singleWord = singleWord
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized ?? !special
    }
}

/// One stretch of input after added tokens are cut out: either an added token's id, or text
/// that goes on to normalization or the model.
enum Segment {
    case token(Int)
    case text([UInt32])
}

/// The added tokens and the two tries they are matched with.
struct AddedVocabulary: Sendable {
    let tokens: [AddedToken]
    /// id -> content, content bytes -> id, and the ids decode() leaves out.
    let contentByID: [Int: String]
    let idByContent: [[UInt8]: Int]
    let specialIDs: Set<Int>
    private let raw: ScalarTrie
    private let normalized: ScalarTrie

    init(_ tokens: [AddedToken], normalizer: Normalizer?) {
        self.tokens = tokens
        contentByID = Dictionary(tokens.map { ($0.id, $0.content) }, uniquingKeysWith: { a, _ in a })
        idByContent = Dictionary(tokens.map { (Array($0.content.utf8), $0.id) }, uniquingKeysWith: { a, _ in a })
        specialIDs = Set(tokens.filter(\.special).map(\.id))
        var raw: [([UInt32], Int)] = [], normalized: [([UInt32], Int)] = []
        for (i, t) in tokens.enumerated() where !t.content.isEmpty {
            if t.normalized {
                normalized.append((normalizer?.apply(t.content.codePoints) ?? t.content.codePoints, i))
            } else {
                raw.append((t.content.codePoints, i))
            }
        }
        self.raw = ScalarTrie(raw)
        self.normalized = ScalarTrie(normalized)
    }

    /// Splits text around the tokens matched by the raw (`normalizedText` false) or the
    /// normalized trie.
    func split(_ text: [UInt32], normalizedText: Bool) -> [Segment] {
        let trie = normalizedText ? normalized : raw
        guard !trie.isEmpty, !text.isEmpty else { return [.text(text)] }
        var out: [Segment] = []
        var start = 0       // where the pending text begins
        var i = 0
        while i < text.count {
            guard let (index, end) = trie.longestMatch(text, from: i) else { i += 1; continue }
            let token = tokens[index]
            var matchStart = i, matchEnd = end
            if token.singleWord {
                let before = i == 0 || !UnicodeData.word.contains(text[i - 1])
                let after = end == text.count || !UnicodeData.word.contains(text[end])
                if !(before && after) { i = end; continue }  // the library resumes after a discarded match
            }
            if token.lstrip {
                while matchStart > start && UnicodeData.whitespace.contains(text[matchStart - 1]) { matchStart -= 1 }
            }
            if token.rstrip {
                while matchEnd < text.count && UnicodeData.whitespace.contains(text[matchEnd]) { matchEnd += 1 }
            }
            if start < matchStart { out.append(.text(Array(text[start..<matchStart]))) }
            out.append(.token(token.id))
            start = matchEnd
            i = matchEnd
        }
        if start < text.count { out.append(.text(Array(text[start...]))) }
        return out
    }
}

/// A trie over code points, for the few hundred added tokens at most.
struct ScalarTrie: Sendable {
    private var children: [[UInt32: Int32]] = [[:]]
    private var values: [Int32] = [-1]

    init(_ entries: [([UInt32], Int)]) {
        for (key, value) in entries {
            var node = 0
            for c in key {
                if let next = children[node][c] { node = Int(next) } else {
                    children.append([:]); values.append(-1)
                    children[node][c] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            if values[node] < 0 { values[node] = Int32(value) }
        }
    }

    var isEmpty: Bool { children[0].isEmpty }

    /// The longest entry starting at `start`: (its value, where it ends).
    func longestMatch(_ text: [UInt32], from start: Int) -> (Int, Int)? {
        var node = 0, best: (Int, Int)?
        var i = start
        while i < text.count, let next = children[node][text[i]] {
            node = Int(next)
            i += 1
            if values[node] >= 0 { best = (Int(values[node]), i) }
        }
        return best
    }
}
