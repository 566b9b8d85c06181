/// A set of code points read from one of the reference tables: a bit per code point for the
/// Basic Multilingual Plane (where nearly all text lives), sorted ranges above it.
struct CharacterClass: Sendable {
    private let bmp: [UInt64]
    private let astral: [ClosedRange<UInt32>]

    init(ranges text: String) {
        var bits = [UInt64](repeating: 0, count: 1024)
        var astral: [ClosedRange<UInt32>] = []
        for token in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let parts = token.split(separator: "-")
            let low = UInt32(parts[0], radix: 16)!, high = parts.count > 1 ? UInt32(parts[1], radix: 16)! : low
            var c = low
            while c <= min(high, 0xFFFF) { bits[Int(c >> 6)] |= 1 << UInt64(c & 63); c += 1 }
            if high > 0xFFFF { astral.append(max(low, 0x10000)...high) }
        }
        bmp = bits
        self.astral = astral
    }

    @inline(__always)
    func contains(_ c: UInt32) -> Bool {
        if c < 0x10000 { return bmp[Int(c >> 6)] & (1 << UInt64(c & 63)) != 0 }
        var low = 0, high = astral.count
        while low < high {
            let mid = (low + high) / 2
            if astral[mid].upperBound < c { low = mid + 1 } else { high = mid }
        }
        return low < astral.count && astral[low].contains(c)
    }
}

/// A per-code-point replacement read from one of the reference tables.
struct CharacterMapping: Sendable {
    private let table: [UInt32: [UInt32]]

    init(entries text: String) {
        var table: [UInt32: [UInt32]] = [:]
        for token in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let parts = token.split(separator: ":", omittingEmptySubsequences: false)
            let key = UInt32(parts[0], radix: 16)!
            table[key] = parts[1].isEmpty ? [] : parts[1].split(separator: ".").map { UInt32($0, radix: 16)! }
        }
        self.table = table
    }

    @inline(__always)
    func callAsFunction(_ c: UInt32) -> [UInt32]? { table[c] }

    func forEach(_ body: (UInt32, [UInt32]) -> Void) { for (k, v) in table { body(k, v) } }
}

/// The character classes and mappings of the tokenizers library, parsed once on first use.
enum UnicodeData {
    static let removedByCleanText = CharacterClass(ranges: ReferenceTables.removedByCleanText)
    static let whitespace = CharacterClass(ranges: ReferenceTables.whitespace)
    static let punctuation = CharacterClass(ranges: ReferenceTables.punctuation)
    static let word = CharacterClass(ranges: ReferenceTables.wordCharacters)
    static let nonspacingMark = CharacterClass(ranges: ReferenceTables.nonspacingMarks)
    static let combiningMark = CharacterClass(ranges: ReferenceTables.combiningMarks)
    static let letter = CharacterClass(ranges: ReferenceTables.letters)
    static let number = CharacterClass(ranges: ReferenceTables.numbers)
    static let lowercase = CharacterMapping(entries: ReferenceTables.lowercase)
    static let nfd = CharacterMapping(entries: ReferenceTables.nfd)
    static let nfkd = CharacterMapping(entries: ReferenceTables.nfkd)
    static let nfc = CharacterMapping(entries: ReferenceTables.nfc)
    static let nfkc = CharacterMapping(entries: ReferenceTables.nfkc)

    /// Canonical pairs for composition: (first, second) -> composite, from the single-character
    /// NFD table, leaving out the characters NFC does not produce (exclusions, singletons).
    static let compositions: [UInt64: UInt32] = {
        // Composition goes one step at a time: a composite whose full decomposition is
        // [f0, ..., fn] composes from (the composite of [f0, ..., fn-1], fn). Characters whose
        // NFC is not themselves (exclusions, singletons) are never produced.
        var byDecomposition: [[UInt32]: UInt32] = [:]
        nfd.forEach { c, full in if nfc(c) == nil { byDecomposition[full] = c } }
        var pairs: [UInt64: UInt32] = [:]
        nfd.forEach { c, full in
            guard full.count >= 2, nfc(c) == nil else { return }
            let head = Array(full.dropLast())
            guard let first = head.count == 1 ? head[0] : byDecomposition[head] else { return }
            pairs[UInt64(first) << 32 | UInt64(full.last!)] = c
        }
        return pairs
    }()

    static func isCJK(_ c: UInt32) -> Bool {
        switch c {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }
}
