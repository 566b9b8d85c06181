/// A pre-tokenizer of tokenizer.json: cuts normalized text into the pieces the model sees one
/// at a time. Each case splits as the tokenizers library's pre-tokenizer of the same name.
public indirect enum PreTokenizer: Sendable {
    /// What happens to the characters a split matches (tokenizers' SplitDelimiterBehavior).
    public enum Delimiter: String, Sendable {
        case removed, isolated, mergedWithPrevious, mergedWithNext, contiguous
    }
    public enum PrependScheme: String, Sendable { case always, first, never }

    /// Whitespace removed, then every punctuation character its own piece.
    case bert
    /// `\w+|[^\w\s]+`.
    case whitespace
    /// Split on whitespace, which is removed.
    case whitespaceSplit
    case punctuation(Delimiter)
    /// Numbers (every Unicode number, as Rust's char::is_numeric, not only 0-9) split from the
    /// rest, each its own piece or in runs.
    case digits(individual: Bool)
    /// Spaces become `replacement` (▁), a prefix is prepended per `scheme`, and with `split`
    /// each piece starts at a replacement character.
    case metaspace(replacement: UInt32, scheme: PrependScheme, split: Bool)
    /// GPT-2's: a space before each piece if asked, the GPT-2 split if asked, then every byte
    /// as a character of the byte alphabet.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// Split at a string or regex's matches, the matches treated as `behavior` says (or, with
    /// `invert`, what lies between them).
    case split(SplitPattern, behavior: Delimiter, invert: Bool)
    case sequence([PreTokenizer])

    /// `first` is true for the first piece of the input (before any added token), which
    /// Metaspace's `first` scheme needs.
    public func split(_ pieces: [[UInt32]], first: Bool) -> [[UInt32]] {
        switch self {
        case .bert:
            let words = pieces.flatMap { Self.split($0, by: UnicodeData.whitespace.contains, .removed) }
            return words.flatMap { Self.split($0, by: UnicodeData.punctuation.contains, .isolated) }
        case .whitespace:
            return pieces.flatMap(Self.wordRuns)
        case .whitespaceSplit:
            return pieces.flatMap { Self.split($0, by: UnicodeData.whitespace.contains, .removed) }
        case let .punctuation(behavior):
            return pieces.flatMap { Self.split($0, by: UnicodeData.punctuation.contains, behavior) }
        case let .digits(individual):
            return pieces.flatMap { Self.split($0, by: UnicodeData.number.contains, individual ? .isolated : .contiguous) }
        case let .metaspace(replacement, scheme, split):
            var out: [[UInt32]] = []
            for (i, piece) in pieces.enumerated() {
                var s = piece.map { $0 == 32 ? replacement : $0 }
                let prepend = scheme == .always || (scheme == .first && first && i == 0)
                if prepend && s.first != replacement { s.insert(replacement, at: 0) }
                if split { out += Self.split(s, by: { $0 == replacement }, .mergedWithNext) } else { out.append(s) }
            }
            return out
        case let .byteLevel(addPrefixSpace, useRegex):
            return pieces.flatMap { piece -> [[UInt32]] in
                var s = piece
                if addPrefixSpace && s.first != 32 { s.insert(32, at: 0) }
                return (useRegex ? ByteLevel.gpt2Split(s) : [s]).map(ByteLevel.encode)
            }
        case let .split(pattern, behavior, invert):
            return pieces.flatMap { pattern.split($0, behavior: behavior, invert: invert) }
        case let .sequence(steps):
            return steps.reduce(pieces) { $1.split($0, first: first) }
        }
    }

    /// Splits one piece where `matches` holds, treating the matched characters as `behavior`
    /// says. Empty pieces are dropped, as the library drops them.
    static func split(_ s: [UInt32], by matches: (UInt32) -> Bool, _ behavior: Delimiter) -> [[UInt32]] {
        var out: [[UInt32]] = []
        var current: [UInt32] = []
        var i = 0
        func flush() { if !current.isEmpty { out.append(current); current = [] } }
        while i < s.count {
            let c = s[i]
            guard matches(c) else { current.append(c); i += 1; continue }
            switch behavior {
            case .removed: flush()
            case .isolated: flush(); out.append([c])
            case .mergedWithPrevious: current.append(c); flush()
            case .mergedWithNext: flush(); current.append(c)
            case .contiguous:
                flush()
                var run = [c]
                while i + 1 < s.count && matches(s[i + 1]) { i += 1; run.append(s[i]) }
                out.append(run)
            }
            i += 1
        }
        flush()
        return out
    }

    /// Runs of word characters and runs of other non-space characters.
    static func wordRuns(_ s: [UInt32]) -> [[UInt32]] {
        var out: [[UInt32]] = []
        var current: [UInt32] = []
        var currentIsWord = false
        for c in s {
            if UnicodeData.whitespace.contains(c) {
                if !current.isEmpty { out.append(current); current = [] }
                continue
            }
            let isWord = UnicodeData.word.contains(c)
            if !current.isEmpty && isWord != currentIsWord { out.append(current); current = [] }
            currentIsWord = isWord
            current.append(c)
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}
