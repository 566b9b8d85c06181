import Foundation

/// A decoder of tokenizer.json: turns tokens back into text.
public indirect enum Decoder: Sendable {
    /// Joins pieces, a continuation prefix gluing a piece to the previous one; `cleanup` undoes
    /// the spaces BERT's tokenization put before punctuation and contractions.
    case wordPiece(prefix: String, cleanup: Bool)
    /// GPT-2's byte alphabet back to bytes, then text.
    case byteLevel
    /// ▁ back to spaces; the first token loses its ▁ unless the scheme is `never`.
    case metaspace(replacement: UInt32, prependScheme: PreTokenizer.PrependScheme)
    case replace(SplitPattern, content: String)
    /// Runs of <0xXX> tokens back to the text their bytes spell.
    case byteFallback
    /// All tokens into one.
    case fuse
    /// Up to `start` leading and `stop` trailing `content` characters off each token.
    case strip(content: UInt32, start: Int, stop: Int)
    /// The end-of-word suffix becomes a space (the last token's is dropped).
    case bpe(suffix: String)
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
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                let mapped = token.unicodeScalars.map { ByteLevel.charToByte[$0.value] }
                if mapped.allSatisfy({ $0 != nil }) { bytes += mapped.map { $0! } } else { bytes += Array(token.utf8) }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case let .metaspace(replacement, scheme):
            return tokens.enumerated().map { i, token in
                var out = String.UnicodeScalarView()
                for s in token.unicodeScalars {
                    if s.value == replacement {
                        if i == 0 && scheme != .never { continue }
                        out.append(" ")
                    } else {
                        out.append(s)
                    }
                }
                return String(out)
            }
        case let .replace(pattern, content):
            return tokens.map { pattern.replacingMatches(in: $0.codePoints, with: content.codePoints).string }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) { out.append(s) } else {
                    out += [String](repeating: "\u{FFFD}", count: pending.count)
                }
                pending = []
            }
            for token in tokens {
                let u = Array(token.utf8)
                if u.count == 6, token.hasPrefix("<0x"), u[5] == UInt8(ascii: ">"),
                   let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(token)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case let .strip(content, start, stop):
            return tokens.map { token in
                var s = Array(token.unicodeScalars)
                var a = 0
                while a < start && a < s.count && s[a].value == content { a += 1 }
                var b = 0
                while b < stop && b < s.count - a && s[s.count - 1 - b].value == content { b += 1 }
                s = Array(s[a..<(s.count - b)])
                return String(String.UnicodeScalarView(s))
            }
        case let .bpe(suffix):
            return tokens.enumerated().map { i, token in
                token.replacingOccurrences(of: suffix, with: i == tokens.count - 1 ? "" : " ", options: .literal)
            }
        case let .sequence(steps):
            return steps.reduce(tokens) { $1.decode($0) }
        }
    }

    static func cleanup(_ s: String) -> String {
        var t = s
        for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                           (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
            // Literal: Foundation's default search would also match canonically equivalent text.
            t = t.replacingOccurrences(of: from, with: to, options: .literal)
        }
        return t
    }
}
