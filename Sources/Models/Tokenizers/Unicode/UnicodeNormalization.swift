/// NFD, NFKD, NFC and NFKC over code points, with the tokenizers library's decomposition
/// tables (see ReferenceTables) so that new characters are left as that library leaves them.
/// Canonical combining classes come from Swift's Unicode data: they never change for an
/// assigned character (Unicode's stability policy).
public enum UnicodeNormalization {
    public enum Form: Sendable { case nfd, nfkd, nfc, nfkc }

    static func apply(_ form: Form, to text: [UInt32]) -> [UInt32] {
        // Fast path: ASCII is its own normal form in every form.
        if text.allSatisfy({ $0 < 0x80 }) { return text }
        switch form {
        case .nfd: return decompose(text, compatibility: false)
        case .nfkd: return decompose(text, compatibility: true)
        case .nfc: return compose(decompose(text, compatibility: false))
        case .nfkc: return compose(decompose(text, compatibility: true))
        }
    }

    static func combiningClass(_ c: UInt32) -> UInt8 {
        if c < 0x300 { return 0 }
        guard let s = Unicode.Scalar(c) else { return 0 }
        return s.properties.canonicalCombiningClass.rawValue
    }

    private static let hangulBase: UInt32 = 0xAC00, hangulCount: UInt32 = 11172
    private static let leadBase: UInt32 = 0x1100, vowelBase: UInt32 = 0x1161, trailBase: UInt32 = 0x11A7
    private static let vowelCount: UInt32 = 21, trailCount: UInt32 = 28

    static func decompose(_ text: [UInt32], compatibility: Bool) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(text.count + text.count / 4)
        let table = compatibility ? UnicodeData.nfkd : UnicodeData.nfd
        for c in text {
            if c < 0xC0 && !(compatibility && c >= 0xA0) { out.append(c); continue }
            if c >= hangulBase && c < hangulBase + hangulCount {
                let index = c - hangulBase
                out.append(leadBase + index / (vowelCount * trailCount))
                out.append(vowelBase + (index % (vowelCount * trailCount)) / trailCount)
                let trail = index % trailCount
                if trail != 0 { out.append(trailBase + trail) }
                continue
            }
            if let replacement = table(c) { out += replacement } else { out.append(c) }
        }
        reorder(&out)
        return out
    }

    /// Canonical ordering: runs of non-starters sorted stably by combining class.
    static func reorder(_ s: inout [UInt32]) {
        var i = 0
        while i < s.count {
            guard combiningClass(s[i]) != 0 else { i += 1; continue }
            var end = i
            while end < s.count && combiningClass(s[end]) != 0 { end += 1 }
            if end - i > 1 {
                let run = s[i..<end].enumerated().sorted {
                    let a = combiningClass($0.element), b = combiningClass($1.element)
                    return a != b ? a < b : $0.offset < $1.offset
                }.map(\.element)
                s.replaceSubrange(i..<end, with: run)
            }
            i = end
        }
    }

    /// The canonical composition algorithm over a decomposed, reordered sequence.
    static func compose(_ s: [UInt32]) -> [UInt32] {
        guard !s.isEmpty else { return s }
        var out: [UInt32] = []
        out.reserveCapacity(s.count)
        var starter = -1          // index in out of the last starter
        var lastClass: Int = -1   // combining class of the last character appended after it
        for c in s {
            let cc = Int(combiningClass(c))
            if starter >= 0 {
                let blocked = lastClass != -1 && (lastClass >= cc || lastClass == 0)
                if !blocked, let composite = composePair(out[starter], c) {
                    out[starter] = composite
                    continue
                }
            }
            if cc == 0 { starter = out.count; lastClass = -1 } else { lastClass = cc }
            out.append(c)
        }
        return out
    }

    static func composePair(_ a: UInt32, _ b: UInt32) -> UInt32? {
        if a >= leadBase && a < leadBase + 19 && b >= vowelBase && b < vowelBase + vowelCount {
            return hangulBase + ((a - leadBase) * vowelCount + (b - vowelBase)) * trailCount
        }
        if a >= hangulBase && a < hangulBase + hangulCount && (a - hangulBase) % trailCount == 0
            && b > trailBase && b < trailBase + trailCount {
            return a + (b - trailBase)
        }
        return UnicodeData.compositions[UInt64(a) << 32 | UInt64(b)]
    }
}
