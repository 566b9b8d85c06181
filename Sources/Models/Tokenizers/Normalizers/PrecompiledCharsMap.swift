import Foundation

/// SentencePiece's precompiled normalization rules (the `precompiled_charsmap` of XLM-R style
/// tokenizers): a double-array trie (darts-clone's layout) over UTF-8 keys whose values are
/// offsets into a blob of NUL-terminated replacements. Applied as the tokenizers library
/// applies it: grapheme by grapheme, a grapheme under 6 bytes replaced whole when a rule
/// matches a prefix of it (the shortest), else character by character.
public struct PrecompiledCharsMap: Sendable {
    private let units: [UInt32]
    private let replacements: [UInt8]

    public init(base64 text: String) throws {
        guard let data = Data(base64Encoded: text) else {
            throw ModelError.badConfig("tokenizer.json: Precompiled's precompiled_charsmap is not base64")
        }
        try self.init(bytes: [UInt8](data))
    }

    public init(bytes: [UInt8]) throws {
        guard bytes.count >= 4 else { throw ModelError.badConfig("tokenizer.json: precompiled_charsmap is too short") }
        let trieSize = Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        guard trieSize % 4 == 0, trieSize <= bytes.count - 4, trieSize >= 4 else {
            throw ModelError.badConfig("tokenizer.json: precompiled_charsmap's trie size \(trieSize) does not fit its \(bytes.count) bytes")
        }
        var units = [UInt32](repeating: 0, count: trieSize / 4)
        for i in 0..<units.count {
            let o = 4 + i * 4
            units[i] = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
        }
        self.units = units
        replacements = Array(bytes[(4 + trieSize)...])
        guard String(validating: replacements, as: UTF8.self) != nil else {
            throw ModelError.badConfig("tokenizer.json: precompiled_charsmap's replacements are not UTF-8")
        }
    }

    @inline(__always) private func offset(_ unit: UInt32) -> Int { Int((unit >> 10) << ((unit & (1 << 9)) >> 6)) }
    @inline(__always) private func label(_ unit: UInt32) -> UInt32 { unit & ((1 << 31) | 0xFF) }
    @inline(__always) private func hasLeaf(_ unit: UInt32) -> Bool { (unit >> 8) & 1 == 1 }
    @inline(__always) private func value(_ unit: UInt32) -> Int { Int(unit & ((1 << 31) - 1)) }

    /// The replacement of the shortest rule that is a prefix of `key`, if any.
    func firstPrefixReplacement(_ key: [UInt8]) -> [UInt8]? {
        var node = 0
        guard node < units.count else { return nil }
        node ^= offset(units[node])
        for c in key {
            if c == 0 { return nil }
            node ^= Int(c)
            guard node >= 0, node < units.count else { return nil }
            let unit = units[node]
            guard label(unit) == UInt32(c) else { return nil }
            node ^= offset(unit)
            guard node >= 0, node < units.count else { return nil }
            if hasLeaf(unit) {
                let start = value(units[node])
                guard start < replacements.count else { return nil }
                var end = start
                while end < replacements.count && replacements[end] != 0 { end += 1 }
                return Array(replacements[start..<end])
            }
        }
        return nil
    }

    public func apply(_ text: [UInt32]) -> [UInt32] {
        guard !text.isEmpty else { return text }
        var out: [UInt32] = []
        out.reserveCapacity(text.count)
        var modified = false
        for grapheme in text.string {
            let scalars = grapheme.unicodeScalars.map(\.value)
            let bytes = scalars.utf8Bytes
            if bytes.count < 6, let r = firstPrefixReplacement(bytes) {
                out += String(decoding: r, as: UTF8.self).codePoints
                modified = true
                continue
            }
            for c in scalars {
                if let r = firstPrefixReplacement([c].utf8Bytes) {
                    out += String(decoding: r, as: UTF8.self).codePoints
                    modified = true
                } else {
                    out.append(c)
                }
            }
        }
        return modified ? out : text
    }
}
