/// A normalizer of tokenizer.json: rewrites the text (as code points) before it is split.
/// Each case does what the tokenizers library's normalizer of the same name does.
public indirect enum Normalizer: Sendable {
    /// BERT's cleaning: drop control characters, map whitespace to spaces, space out CJK
    /// ideographs, strip accents (defaults to `lowercase` when nil), lowercase.
    case bert(cleanText: Bool, handleChineseChars: Bool, stripAccents: Bool?, lowercase: Bool)
    case lowercase
    case stripAccents
    case unicode(UnicodeNormalization.Form)
    /// Every match of the pattern replaced by `content`.
    case replace(SplitPattern, content: [UInt32])
    /// SentencePiece's precompiled rules (XLM-R, T5, ...).
    case precompiled(PrecompiledCharsMap)
    /// Text to GPT-2's byte alphabet.
    case byteLevel
    case prepend([UInt32])
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])

    public func apply(_ text: [UInt32]) -> [UInt32] {
        switch self {
        case let .bert(cleanText, handleChineseChars, stripAccents, lower):
            var s = text
            if cleanText { s = Self.clean(s) }
            if handleChineseChars { s = Self.spaceCJK(s) }
            if stripAccents ?? lower { s = Self.dropMarks(UnicodeNormalization.apply(.nfd, to: s)) }
            if lower { s = Self.lower(s) }
            return s
        case .lowercase: return Self.lower(text)
        // Not the same class as BertNormalizer's: the library's StripAccents drops every
        // combining mark (a Devanagari vowel sign too), BertNormalizer only nonspacing ones.
        case .stripAccents: return text.allSatisfy({ $0 < 0x300 }) ? text : text.filter { !UnicodeData.combiningMark.contains($0) }
        case let .unicode(form): return UnicodeNormalization.apply(form, to: text)
        case let .replace(pattern, content): return pattern.replacingMatches(in: text, with: content)
        case let .precompiled(map): return map.apply(text)
        case .byteLevel: return ByteLevel.encode(text)
        case let .prepend(prefix): return text.isEmpty ? text : prefix + text
        case let .strip(left, right):
            var start = 0, end = text.count
            if left { while start < end && UnicodeData.whitespace.contains(text[start]) { start += 1 } }
            if right { while end > start && UnicodeData.whitespace.contains(text[end - 1]) { end -= 1 } }
            return Array(text[start..<end])
        case let .sequence(steps):
            return steps.reduce(text) { $1.apply($0) }
        }
    }

    static func clean(_ s: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(s.count)
        for c in s {
            if c == 9 || c == 10 || c == 13 { out.append(32); continue }
            if UnicodeData.removedByCleanText.contains(c) { continue }
            out.append(UnicodeData.whitespace.contains(c) ? 32 : c)
        }
        return out
    }

    static func spaceCJK(_ s: [UInt32]) -> [UInt32] {
        guard s.contains(where: UnicodeData.isCJK) else { return s }
        var out: [UInt32] = []
        out.reserveCapacity(s.count + 8)
        for c in s {
            if UnicodeData.isCJK(c) { out += [32, c, 32] } else { out.append(c) }
        }
        return out
    }

    static func dropMarks(_ s: [UInt32]) -> [UInt32] {
        s.allSatisfy({ $0 < 0x300 }) ? s : s.filter { !UnicodeData.nonspacingMark.contains($0) }
    }

    static func lower(_ s: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(s.count)
        for c in s {
            if c < 0x80 {
                out.append(c >= 65 && c <= 90 ? c + 32 : c)
            } else if let m = UnicodeData.lowercase(c) {
                out += m
            } else {
                out.append(c)
            }
        }
        return out
    }
}
