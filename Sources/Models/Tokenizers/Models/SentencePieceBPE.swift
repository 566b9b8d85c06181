/// SentencePiece's BPE as llama.cpp runs it for GGUF vocabularies of the "llama" kind (Llama 2,
/// Mistral, TinyLlama ...): a piece starts as its characters; the adjacent pair whose joined
/// text is a token with the highest score merges first (the leftmost of equal scores), and
/// again until no pair joins into a token. A character left that is no token becomes its UTF-8
/// bytes' <0xXX> tokens, or the unknown token where the vocabulary has no byte tokens.
///
/// The scores order the merges (tokenizer.ggml.scores); there is no merge list. This is the
/// algorithm of SentencePiece's own BPE encoder, not the tokenizers library's rank-ordered BPE,
/// which can pick other merges from the same vocabulary.
public struct SentencePieceBPE: Sendable {
    public let vocabulary: [String]
    let scores: [Float]
    private let idByText: [[UInt32]: Int]
    private let byteTokens: [Int?]
    let unknownID: Int?

    public init(tokens: [String], scores: [Float], unknownID: Int?) throws(ModelError) {
        guard tokens.count == scores.count else {
            throw .badConfig("a SentencePiece vocabulary of \(tokens.count) tokens with \(scores.count) scores")
        }
        guard scores.allSatisfy(\.isFinite) else { throw .badConfig("a SentencePiece score is not finite") }
        vocabulary = tokens
        self.scores = scores
        var byText: [[UInt32]: Int] = [:]
        byText.reserveCapacity(tokens.count)
        // The first of equal texts wins, as llama.cpp's token map keeps the first it reads.
        for (id, t) in tokens.enumerated() where byText[t.codePoints] == nil { byText[t.codePoints] = id }
        idByText = byText
        byteTokens = (0..<256).map { b in byText["<0x\(String(b, radix: 16, uppercase: true).leftPadded(2))>".codePoints] }
        if let unknownID, !(0..<tokens.count).contains(unknownID) {
            throw .badConfig("the unknown token id \(unknownID) is outside the \(tokens.count) tokens")
        }
        self.unknownID = unknownID
    }

    public func id(of token: String) -> Int? { idByText[token.codePoints] }

    /// A symbol: a run of the piece's characters, linked to its neighbours.
    private struct Symbol {
        var start: Int, count: Int, previous: Int, next: Int
    }

    public func tokenize(_ piece: [UInt32], into ids: inout [Int]) {
        guard !piece.isEmpty else { return }
        var symbols = piece.indices.map { Symbol(start: $0, count: 1, previous: $0 - 1, next: $0 + 1 == piece.count ? -1 : $0 + 1) }
        var heap = CandidateHeap()
        func consider(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let (a, b) = (symbols[left], symbols[right])
            guard let id = idByText[Array(piece[a.start..<(b.start + b.count)])] else { return }
            heap.push(Candidate(left: left, right: right, score: scores[id], count: a.count + b.count))
        }
        for i in 1..<symbols.count { consider(i - 1, i) }
        while let c = heap.pop() {
            let (l, r) = (symbols[c.left], symbols[c.right])
            // A pair one of whose symbols has merged since is stale.
            guard l.count > 0, r.count > 0, l.count + r.count == c.count, l.next == c.right else { continue }
            symbols[c.left].count += r.count
            symbols[c.right].count = 0
            symbols[c.left].next = r.next
            if r.next >= 0 { symbols[r.next].previous = c.left }
            consider(symbols[c.left].previous, c.left)
            consider(c.left, symbols[c.left].next)
        }
        var i = 0
        while i != -1 {
            let s = symbols[i]
            let text = Array(piece[s.start..<(s.start + s.count)])
            if let id = idByText[text] {
                ids.append(id)
            } else {
                var scalars = String.UnicodeScalarView()
                scalars.append(contentsOf: text.compactMap(Unicode.Scalar.init))
                for byte in String(scalars).utf8 {
                    if let b = byteTokens[Int(byte)] { ids.append(b) } else if let unknownID { ids.append(unknownID) }
                }
            }
            i = s.next
        }
    }
}

/// A pair of adjacent symbols whose joined text is a token.
private struct Candidate {
    let left: Int, right: Int, score: Float, count: Int
    /// Pops first: the higher score, then the leftmost.
    func before(_ o: Candidate) -> Bool { score > o.score || (score == o.score && left < o.left) }
}

/// A binary heap of merge candidates, best first.
private struct CandidateHeap {
    private var items: [Candidate] = []

    mutating func push(_ c: Candidate) {
        items.append(c)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].before(items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Candidate? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let (a, b) = (2 * i + 1, 2 * i + 2)
                var best = i
                if a < items.count && items[a].before(items[best]) { best = a }
                if b < items.count && items[b].before(items[best]) { best = b }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
        }
        return top
    }
}
