/// WordPiece (BERT's model): each piece is split greedily into the longest vocabulary entries
/// from its start, continuations carrying a prefix (`##`); a piece that cannot be split, or is
/// longer than `maxInputCharsPerWord`, becomes the unknown token.
public struct WordPiece: Sendable {
    /// Token text by id ("" where an id has no token).
    public let vocabulary: [String]
    let unk: Int
    let maxInputCharsPerWord: Int
    let prefix: String
    /// Every entry. The continuations (entries after the prefix) are the subtree under the
    /// prefix's node, so one trie serves both lookups.
    private let trie: ByteTrie
    private let continuationRoot: Int?

    /// `entries`: (token, id) pairs, as tokenizer.json's vocab or vocab.txt's lines give them.
    public init(entries: [(String, Int)], unkToken: String, prefix: String = "##", maxInputCharsPerWord: Int = 100) throws {
        guard let unk = entries.first(where: { $0.0.utf8.elementsEqual(unkToken.utf8) })?.1 else {
            throw ModelError.badConfig("the WordPiece vocabulary has no unknown token '\(unkToken)'")
        }
        var vocabulary = [String](repeating: "", count: (entries.map(\.1).max() ?? -1) + 1)
        for (token, id) in entries where vocabulary[id].isEmpty { vocabulary[id] = token }
        self.vocabulary = vocabulary
        self.unk = unk
        self.maxInputCharsPerWord = maxInputCharsPerWord
        self.prefix = prefix
        trie = ByteTrie(keys: entries.lazy.map(\.0.utf8), values: entries.map(\.1))
        continuationRoot = trie.walk(prefix.utf8)
    }

    public func id(of token: String) -> Int? { trie.lookup(token.utf8) }

    public func tokenize(_ piece: [UInt32], into ids: inout [Int]) {
        if piece.count > maxInputCharsPerWord { ids.append(unk); return }
        let bytes = piece.utf8Bytes
        let before = ids.count
        let ok = bytes.withUnsafeBufferPointer { buffer -> Bool in
            var start = 0
            while start < buffer.count {
                // A continuation is matched below the prefix's node (never the prefix alone:
                // a match takes at least one byte).
                guard let root = start == 0 ? 0 : continuationRoot,
                      let (id, end) = trie.longestPrefix(buffer, from: start, root: root) else { return false }
                ids.append(id)
                start = end
            }
            return true
        }
        if !ok { ids.removeSubrange(before...); ids.append(unk) }
    }
}
