import Foundation

/// The Unigram model (SentencePiece's): the segmentation of highest total score, by Viterbi
/// over every vocabulary entry that starts at each character; a character no entry covers
/// becomes the unknown token at the lowest score minus 10, consecutive unknowns fused; with
/// byte_fallback an unknown piece becomes its <0xXX> byte tokens.
public struct Unigram: Sendable {
    public let vocabulary: [String]
    let scores: [Double]
    private let trie: ByteTrie
    let unk: Int?
    let byteFallback: Bool
    private let unkScore: Double
    private let byteTokens: [Int?]

    public init(entries: [(String, Double)], unkID: Int?, byteFallback: Bool) throws {
        guard !entries.isEmpty else { throw ModelError.badConfig("tokenizer.json: Unigram with an empty vocabulary") }
        if let unkID, !(0..<entries.count).contains(unkID) {
            throw ModelError.badConfig("tokenizer.json: Unigram's unk_id \(unkID) is outside its vocabulary")
        }
        vocabulary = entries.map(\.0)
        scores = entries.map(\.1)
        // token -> id keeps the last of a repeated token, as the library's map does.
        trie = ByteTrie(entries.enumerated().reversed().map { (bytes: Array($0.element.0.utf8), value: $0.offset) })
        unk = unkID
        self.byteFallback = byteFallback
        unkScore = (scores.min() ?? 0) - 10
        var bytes = [Int?](repeating: nil, count: 256)
        for b in 0..<256 { bytes[b] = trie.lookup("<0x\(String(b, radix: 16, uppercase: true).leftPadded(2))>".utf8) }
        byteTokens = bytes
    }

    public func id(of token: String) -> Int? { trie.lookup(token.utf8) }

    public func tokenize(_ piece: [UInt32], into ids: inout [Int]) {
        let bytes = piece.utf8Bytes
        let n = bytes.count
        guard n > 0 else { return }
        // best[e]: the best path ending at byte e: its score, where its last token starts, which token.
        var score = [Double](repeating: 0, count: n + 1)
        var from = [Int](repeating: -1, count: n + 1)
        var token = [Int](repeating: 0, count: n + 1)
        bytes.withUnsafeBufferPointer { buffer in
            var start = 0
            while start < n {
                let base = score[start]
                let charLength = Self.utf8Length(buffer[start])
                var coversChar = false
                trie.forEachPrefix(buffer, from: start) { id, end in
                    let candidate = scores[id] + base
                    if from[end] < 0 || candidate > score[end] { score[end] = candidate; from[end] = start; token[end] = id }
                    if end - start == charLength { coversChar = true }
                }
                if !coversChar {
                    let end = Swift.min(n, start + charLength)
                    let candidate = unkScore + base
                    if from[end] < 0 || candidate > score[end] { score[end] = candidate; from[end] = start; token[end] = unk ?? -1 }
                }
                start += charLength
            }
        }
        // Walk back, fusing runs of unknown tokens into one piece.
        var pieces: [(start: Int, end: Int, id: Int)] = []
        var end = n
        while end > 0 {
            let start = from[end], id = token[end]
            if id == unk ?? -1, let last = pieces.last, last.id == id, last.start == end {
                pieces[pieces.count - 1] = (start, last.end, id)
            } else {
                pieces.append((start, end, id))
            }
            end = start
        }
        for p in pieces.reversed() {
            if p.id >= 0 && p.id != unk { ids.append(p.id); continue }
            // An unknown piece: its text may still be a token (fused unknowns), else bytes, else unk.
            let text = bytes[p.start..<p.end]
            if let id = trie.lookup(text) { ids.append(id); continue }
            if byteFallback {
                let fallback = text.map { byteTokens[Int($0)] }
                if fallback.allSatisfy({ $0 != nil }) { ids += fallback.map { $0! }; continue }
            }
            if let unk { ids.append(unk) }
        }
    }

    static func utf8Length(_ lead: UInt8) -> Int {
        lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
    }
}
