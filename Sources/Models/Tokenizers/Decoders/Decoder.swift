import Foundation

/// A decoder of tokenizer.json: turns tokens back into text.
public indirect enum Decoder: Sendable {
    /// Joins pieces, a continuation prefix gluing a piece to the previous one; `cleanup` undoes
    /// the spaces BERT's tokenization put before punctuation and contractions.
    case wordPiece(prefix: String, cleanup: Bool)
    case sequence([Decoder])

    func decode(_ tokens: [String]) -> [String] {
        switch self {
        case let .wordPiece(prefix, cleanup):
            return tokens.enumerated().map { i, token in
                var t = token
                if i != 0 {
                    if !prefix.isEmpty, t.utf8.starts(with: prefix.utf8) {
                        t = String(String.UnicodeScalarView(t.unicodeScalars.dropFirst(prefix.unicodeScalars.count)))
                    } else {
                        t = " " + t
                    }
                }
                return cleanup ? Self.cleanup(t) : t
            }
        case let .sequence(steps):
            return steps.reduce(tokens) { $1.decode($0) }
        }
    }

    static func cleanup(_ s: String) -> String {
        var t = s
        for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                           (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
            t = t.replacingOccurrences(of: from, with: to)
        }
        return t
    }
}
