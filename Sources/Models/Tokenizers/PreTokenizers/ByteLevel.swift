/// GPT-2's byte-level alphabet and pre-tokenizer: every byte of UTF-8 text is written as one
/// printable character (printable ASCII and Latin-1 stand for themselves, the other bytes for
/// U+0100 upwards), so a BPE vocabulary never meets an unknown character.
public enum ByteLevel {
    /// byte -> its character.
    static let byteToChar: [UInt32] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var chars = printable.map(UInt32.init)
        var n: UInt32 = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            chars.append(256 + n)
            n += 1
        }
        var table = [UInt32](repeating: 0, count: 256)
        for (b, c) in zip(printable, chars) { table[b] = c }
        return table
    }()

    /// character -> its byte.
    static let charToByte: [UInt32: UInt8] = {
        var table: [UInt32: UInt8] = [:]
        for (b, c) in byteToChar.enumerated() { table[c] = UInt8(b) }
        return table
    }()

    static func encode(_ piece: [UInt32]) -> [UInt32] { piece.utf8Bytes.map { byteToChar[Int($0)] } }

    /// Back from the byte alphabet to text; bytes that are not UTF-8 become U+FFFD, as the
    /// library's lossy decoding does. Characters outside the alphabet are kept as they are.
    static func decode(_ text: String) -> String {
        var bytes: [UInt8] = []
        for s in text.unicodeScalars {
            if let b = charToByte[s.value] { bytes.append(b) } else { bytes += [s.value].utf8Bytes }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// GPT-2's split: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+,
    /// scanned by hand (the alternation is tried in that order at each position).
    static func gpt2Split(_ s: [UInt32]) -> [[UInt32]] {
        func isSpace(_ c: UInt32) -> Bool { UnicodeData.whitespace.contains(c) }
        func isLetter(_ c: UInt32) -> Bool { UnicodeData.letter.contains(c) }
        func isNumber(_ c: UInt32) -> Bool { UnicodeData.number.contains(c) }
        func isOther(_ c: UInt32) -> Bool { !isSpace(c) && !isLetter(c) && !isNumber(c) }
        var out: [[UInt32]] = []
        var i = 0
        let n = s.count
        while i < n {
            let c = s[i]
            // Contractions.
            if c == 39, i + 1 < n {
                let a = s[i + 1], b: UInt32 = i + 2 < n ? s[i + 2] : 0
                var length = 0
                if a == 115 || a == 116 || a == 109 || a == 100 { length = 2 }                 // 's 't 'm 'd
                else if (a == 114 && b == 101) || (a == 118 && b == 101) || (a == 108 && b == 108) { length = 3 }  // 're 've 'll
                if length > 0 { out.append(Array(s[i..<(i + length)])); i += length; continue }
            }
            // An optional space, then a run of one class.
            let start = i
            var j = i
            if c == 32, j + 1 < n, !isSpace(s[j + 1]) { j += 1 }
            let head = s[j]
            if !isSpace(head) {
                let cls: (UInt32) -> Bool = isLetter(head) ? isLetter : isNumber(head) ? isNumber : isOther
                var k = j
                while k < n && cls(s[k]) { k += 1 }
                out.append(Array(s[start..<k]))
                i = k
                continue
            }
            // Whitespace: the run, less its last character when something follows it.
            var k = i
            while k < n && isSpace(s[k]) { k += 1 }
            if k < n && k - i > 1 { k -= 1 }
            out.append(Array(s[i..<k]))
            i = k
        }
        return out
    }
}
