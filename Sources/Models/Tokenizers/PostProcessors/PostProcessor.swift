/// A post-processor of tokenizer.json: adds the special tokens around one text or a pair.
public indirect enum PostProcessor: Sendable {
    /// One piece of a template: a special token (by its name in `specialTokens`) or one of the
    /// two sequences, with the type id its tokens get.
    public enum Piece: Sendable, Equatable {
        case special(String, typeId: Int)
        case sequence(isFirst: Bool, typeId: Int)
    }

    /// [CLS] A [SEP] (B [SEP]).
    case bert(cls: Int, sep: Int)
    /// <s> A </s> (</s> B </s>); every type id 0.
    case roberta(cls: Int, sep: Int)
    case template(single: [Piece], pair: [Piece], specialTokens: [String: [Int]])
    /// Offsets only (ByteLevel's trim_offsets): ids unchanged.
    case offsetsOnly
    case sequence([PostProcessor])

    /// How many tokens `process` adds to one text (is pair false) or a pair.
    public func addedTokens(pair: Bool) -> Int {
        switch self {
        case .bert: pair ? 3 : 2
        case .roberta: pair ? 4 : 2
        case let .template(single, pairPieces, specials):
            (pair ? pairPieces : single).reduce(0) { n, piece in
                if case let .special(name, _) = piece { return n + (specials[name]?.count ?? 0) }
                return n
            }
        case .offsetsOnly: 0
        case let .sequence(steps): steps.reduce(0) { $0 + $1.addedTokens(pair: pair) }
        }
    }

    public func process(_ a: Encoding, _ b: Encoding?) -> Encoding {
        switch self {
        case let .bert(cls, sep):
            var out = Encoding.special([cls], type: 0) + a.withType(0) + Encoding.special([sep], type: 0)
            if let b { out = out + b.withType(1) + Encoding.special([sep], type: 1) }
            return out
        case let .roberta(cls, sep):
            var out = Encoding.special([cls], type: 0) + a.withType(0) + Encoding.special([sep], type: 0)
            if let b { out = out + Encoding.special([sep], type: 0) + b.withType(0) + Encoding.special([sep], type: 0) }
            return out
        case let .template(single, pair, specials):
            var out = Encoding(ids: [])
            for piece in b == nil ? single : pair {
                switch piece {
                case let .special(name, typeId): out = out + Encoding.special(specials[name] ?? [], type: typeId)
                case let .sequence(isFirst, typeId):
                    if isFirst { out = out + a.withType(typeId) } else if let b { out = out + b.withType(typeId) }
                }
            }
            return out
        case .offsetsOnly:
            // The library's default: the second text's tokens get type 1.
            return b.map { a.withType(0) + $0.withType(1) } ?? a
        case let .sequence(steps):
            // The library hands the pair to the first processor and the merged result on.
            guard let first = steps.first else { return b.map { a + $0 } ?? a }
            var merged = first.process(a, b)
            for step in steps.dropFirst() { merged = step.process(merged, nil) }
            return merged
        }
    }
}
