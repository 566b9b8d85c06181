/// WordPiece (BERT's model): each piece is split greedily into the longest vocabulary entries
/// from its start, continuations carrying a prefix (`##`); a piece that cannot be split, or is
/// longer than `maxInputCharsPerWord`, becomes the unknown token.
public struct WordPiece: Sendable {
    /// Token text by id ("" where an id has no token).
    public let vocabulary: [String]
    let unk: Int
    let maxInputCharsPerWord: Int
    let prefix: String
    /// Whole entries, and entries that start with the prefix (the prefix cut off).
    private let starts: ByteTrie
    private let continuations: ByteTrie

    /// `entries`: (token, id) pairs, as tokenizer.json's vocab or vocab.txt's lines give them.
    public init(entries: [(String, Int)], unkToken: String, prefix: String = "##", maxInputCharsPerWord: Int = 100) throws {
        let unkBytes = Array(unkToken.utf8)
        guard let unk = entries.first(where: { Array($0.0.utf8) == unkBytes })?.1 else {
            throw ModelError.badConfig("the WordPiece vocabulary has no unknown token '\(unkToken)'")
        }
        var vocabulary = [String](repeating: "", count: (entries.map(\.1).max() ?? -1) + 1)
        for (token, id) in entries where vocabulary[id].isEmpty { vocabulary[id] = token }
        self.vocabulary = vocabulary
        self.unk = unk
        self.maxInputCharsPerWord = maxInputCharsPerWord
        self.prefix = prefix
        let p = Array(prefix.utf8)
        var whole: [(bytes: [UInt8], value: Int)] = [], rest: [(bytes: [UInt8], value: Int)] = []
        for (token, id) in entries {
            let bytes = Array(token.utf8)
            whole.append((bytes, id))
            if bytes.count > p.count, bytes.starts(with: p) { rest.append((Array(bytes.dropFirst(p.count)), id)) }
        }
        starts = ByteTrie(whole)
        continuations = p.isEmpty ? starts : ByteTrie(rest)
    }

    public func id(of token: String) -> Int? { starts.lookup(token.utf8) }

    public func tokenize(_ piece: [UInt32], into ids: inout [Int]) {
        if piece.count > maxInputCharsPerWord { ids.append(unk); return }
        let bytes = piece.utf8Bytes
        let before = ids.count
        let ok = bytes.withUnsafeBufferPointer { buffer -> Bool in
            var start = 0
            while start < buffer.count {
                let trie = start == 0 ? starts : continuations
                guard let (id, end) = trie.longestPrefix(buffer, from: start) else { return false }
                ids.append(id)
                start = end
            }
            return true
        }
        if !ok { ids.removeSubrange(before...); ids.append(unk) }
    }
}
