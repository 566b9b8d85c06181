/// Byte-pair encoding as the tokenizers library runs it: a piece starts as its characters
/// (with the continuation prefix and end-of-word suffix where configured), unknown characters
/// become <0xXX> byte tokens (byte_fallback) or the unknown token (fused if fuse_unk), then the
/// adjacent pair with the lowest merge rank is merged, the leftmost first on ties, until no
/// pair has a merge.
public struct BPE: Sendable {
    public let vocabulary: [String]
    private let lookup: ByteTrie
    /// (left id << 32 | right id) -> (rank, merged id).
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    let unk: Int?
    let continuingSubwordPrefix: String?
    let endOfWordSuffix: String?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    private let byteTokens: [Int?]

    public init(entries: [(String, Int)], merges mergeList: [(String, String)], unkToken: String?, continuingSubwordPrefix: String?,
                endOfWordSuffix: String?, fuseUnk: Bool, byteFallback: Bool, ignoreMerges: Bool) throws {
        var vocabulary = [String](repeating: "", count: (entries.map(\.1).max() ?? -1) + 1)
        for (token, id) in entries { vocabulary[id] = token }
        self.vocabulary = vocabulary
        // The library's vocabulary is a map: a repeated token keeps its last id.
        let trie = ByteTrie(entries.reversed().map { (bytes: Array($0.0.utf8), value: $0.1) })
        lookup = trie
        func id(_ token: String) -> Int? { trie.lookup(token.utf8) }
        if let unkToken {
            guard let u = id(unkToken) else { throw ModelError.badConfig("tokenizer.json: BPE's unknown token '\(unkToken)' is not in its vocabulary") }
            unk = u
        } else {
            unk = nil
        }
        let prefixLength = continuingSubwordPrefix?.utf8.count ?? 0
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        table.reserveCapacity(mergeList.count)
        for (rank, (a, b)) in mergeList.enumerated() {
            guard let ia = id(a), let ib = id(b) else {
                throw ModelError.badConfig("tokenizer.json: BPE merge '\(a) \(b)' names a token outside the vocabulary")
            }
            let bBytes = Array(b.utf8)
            let merged = Array(a.utf8) + bBytes.dropFirst(Swift.min(prefixLength, bBytes.count))
            guard let im = trie.lookup(merged) else {
                throw ModelError.badConfig("tokenizer.json: BPE merge '\(a) \(b)' makes a token outside the vocabulary")
            }
            // A repeated pair keeps its last rank, as the library's map does.
            table[UInt64(ia) << 32 | UInt64(ib)] = (Int32(rank), Int32(im))
        }
        merges = table
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.endOfWordSuffix = endOfWordSuffix
        self.fuseUnk = fuseUnk
        self.byteFallback = byteFallback
        self.ignoreMerges = ignoreMerges
        var bytes = [Int?](repeating: nil, count: 256)
        if byteFallback {
            for b in 0..<256 { bytes[b] = trie.lookup("<0x\(String(b, radix: 16, uppercase: true).leftPadded(2))>".utf8) }
        }
        byteTokens = bytes
    }

    public func id(of token: String) -> Int? { lookup.lookup(token.utf8) }

    public func tokenize(_ piece: [UInt32], into ids: inout [Int]) {
        guard !piece.isEmpty else { return }
        if ignoreMerges, let whole = lookup.lookup(piece.utf8Bytes) { ids.append(whole); return }
        var symbols: [Int] = []
        symbols.reserveCapacity(piece.count)
        var pendingUnk = false
        for (i, c) in piece.enumerated() {
            var bytes = [c].utf8Bytes
            if i > 0, let p = continuingSubwordPrefix { bytes = Array(p.utf8) + bytes }
            if i == piece.count - 1, let s = endOfWordSuffix { bytes += Array(s.utf8) }
            if let id = lookup.lookup(bytes) {
                if pendingUnk, let unk { symbols.append(unk); pendingUnk = false }
                symbols.append(id)
                continue
            }
            if byteFallback {
                let fallback = bytes.map { byteTokens[Int($0)] }
                if fallback.allSatisfy({ $0 != nil }) {
                    // The library does not flush a pending unknown token here (it comes after).
                    symbols += fallback.map { $0! }
                    continue
                }
            }
            guard let unk else { continue }
            if pendingUnk && !fuseUnk { symbols.append(unk) }
            pendingUnk = true
        }
        if pendingUnk, let unk { symbols.append(unk) }
        merge(&symbols)
        ids += symbols
    }

    /// Merges until no adjacent pair has a merge: each step the pair of lowest rank, the
    /// leftmost on ties (what the library's priority queue pops).
    private func merge(_ symbols: inout [Int]) {
        while symbols.count > 1 {
            var best: (rank: Int32, at: Int, id: Int32)?
            for i in 0..<(symbols.count - 1) {
                if let m = merges[UInt64(symbols[i]) << 32 | UInt64(symbols[i + 1])], best == nil || m.rank < best!.rank {
                    best = (m.rank, i, m.id)
                }
            }
            guard let b = best else { return }
            symbols[b.at] = Int(b.id)
            symbols.remove(at: b.at + 1)
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
