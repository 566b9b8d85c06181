/// The pattern of a Split pre-tokenizer or a Replace normalizer/decoder: a literal string or a
/// regular expression. Regular expressions run on Swift's regex engine with Unicode-scalar
/// semantics (the tokenizers library uses Oniguruma; the syntax that tokenizer files use,
/// classes like \p{L}, lookahead, (?i:...), counted repeats, is common to both).
public struct SplitPattern: @unchecked Sendable {
    // Regex is not Sendable; a compiled regex is immutable and safe to share for matching.
    private let regex: Regex<AnyRegexOutput>?
    private let literal: [UInt32]?
    public let source: String

    public init(literal: String) {
        self.literal = literal.codePoints
        regex = nil
        source = literal
    }

    public init(regex pattern: String) throws {
        do {
            regex = try Regex(pattern).matchingSemantics(.unicodeScalar)
        } catch {
            throw ModelError.badConfig("tokenizer.json: the regular expression \(pattern.debugDescription) is not one wpack can compile (\(error))")
        }
        literal = nil
        source = pattern
    }

    /// The non-empty matches in `text`, as code point offsets, left to right, not overlapping.
    public func matches(in text: [UInt32]) -> [Range<Int>] {
        if let literal {
            guard !literal.isEmpty, text.count >= literal.count else { return [] }
            var out: [Range<Int>] = []
            var i = 0
            while i + literal.count <= text.count {
                if text[i] == literal[0] && text[i..<(i + literal.count)].elementsEqual(literal) {
                    out.append(i..<(i + literal.count))
                    i += literal.count
                } else {
                    i += 1
                }
            }
            return out
        }
        guard let regex, !text.isEmpty else { return [] }
        let string = text.string
        // UTF-8 offset -> code point offset, for turning the match bounds back into positions.
        var scalarAt = [Int](repeating: 0, count: string.utf8.count + 1)
        var byte = 0
        for (i, c) in text.enumerated() {
            let n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4
            for k in 0..<n { scalarAt[byte + k] = i }
            byte += n
        }
        scalarAt[byte] = text.count
        var out: [Range<Int>] = []
        for m in string.matches(of: regex) {
            let lower = string.utf8.distance(from: string.startIndex, to: m.range.lowerBound)
            let upper = string.utf8.distance(from: string.startIndex, to: m.range.upperBound)
            if upper > lower { out.append(scalarAt[lower]..<scalarAt[upper]) }
        }
        return out
    }

    /// `text` with every match replaced by `content` (the library's NormalizedString::replace).
    func replacingMatches(in text: [UInt32], with content: [UInt32]) -> [UInt32] {
        let found = matches(in: text)
        guard !found.isEmpty else { return text }
        var out: [UInt32] = []
        out.reserveCapacity(text.count)
        var previous = 0
        for m in found {
            out += text[previous..<m.lowerBound]
            out += content
            previous = m.upperBound
        }
        out += text[previous...]
        return out
    }

    /// Splits text at the matches (or, inverted, at what lies between them), keeping or
    /// merging the matched parts as `behavior` says: the library's NormalizedString::split.
    func split(_ text: [UInt32], behavior: PreTokenizer.Delimiter, invert: Bool) -> [[UInt32]] {
        var events: [(Range<Int>, Bool)] = []
        var previous = 0
        for m in matches(in: text) {
            if previous < m.lowerBound { events.append((previous..<m.lowerBound, false)) }
            events.append((m, true))
            previous = m.upperBound
        }
        if previous < text.count { events.append((previous..<text.count, false)) }
        if invert { events = events.map { ($0.0, !$0.1) } }
        var pieces: [Range<Int>] = []
        switch behavior {
        case .removed: pieces = events.filter { !$0.1 }.map(\.0)
        case .isolated: pieces = events.map(\.0)
        case .mergedWithPrevious:
            var previousMatch = false
            for (r, isMatch) in events {
                if isMatch && !previousMatch, let last = pieces.last { pieces[pieces.count - 1] = last.lowerBound..<r.upperBound } else { pieces.append(r) }
                previousMatch = isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for (r, isMatch) in events.reversed() {
                if isMatch && !previousMatch, let last = pieces.last { pieces[pieces.count - 1] = r.lowerBound..<last.upperBound } else { pieces.append(r) }
                previousMatch = isMatch
            }
            pieces.reverse()
        case .contiguous:
            var previousMatch = false
            for (r, isMatch) in events {
                if isMatch == previousMatch, let last = pieces.last { pieces[pieces.count - 1] = last.lowerBound..<r.upperBound } else { pieces.append(r) }
                previousMatch = isMatch
            }
        }
        return pieces.filter { !$0.isEmpty }.map { Array(text[$0]) }
    }
}
