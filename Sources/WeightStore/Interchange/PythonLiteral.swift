/// The Python literals a .npy header is made of, parsed as `ast.literal_eval` would for the
/// subset NumPy writes: a dict of string keys whose values are strings, True/False, integers
/// (with Python 2's L suffix), tuples and lists of those. Anything else is an error, never a
/// guess.
enum PythonLiteral: Equatable {
    case string(String)
    case bool(Bool)
    case int(Int)
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case none

    struct ParseError: Error {
        let reason: String
    }

    /// The entries of a dict literal in written order (duplicates kept: the caller decides).
    static func parseDict(_ text: String) throws(ParseError) -> [(String, PythonLiteral)] {
        var p = Parser(bytes: Array(text.utf8))
        p.skipSpace()
        try p.expect(UInt8(ascii: "{"))
        var entries: [(String, PythonLiteral)] = []
        while true {
            p.skipSpace()
            if p.peek == UInt8(ascii: "}") { p.at += 1; break }
            guard case let .string(key) = try p.value(depth: 0) else { throw ParseError(reason: "a key is not a string") }
            p.skipSpace()
            try p.expect(UInt8(ascii: ":"))
            entries.append((key, try p.value(depth: 0)))
            p.skipSpace()
            if p.peek == UInt8(ascii: ",") { p.at += 1; continue }
            p.skipSpace()
            try p.expect(UInt8(ascii: "}"))
            break
        }
        p.skipSpace()
        guard p.at == p.bytes.count else { throw ParseError(reason: "text after the dict") }
        return entries
    }

    private struct Parser {
        let bytes: [UInt8]
        var at = 0
        var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

        mutating func skipSpace() {
            while let b = peek, b == 32 || b == 9 || b == 10 || b == 13 { at += 1 }
        }

        mutating func expect(_ byte: UInt8) throws(ParseError) {
            guard peek == byte else {
                throw ParseError(reason: "expected '\(Character(Unicode.Scalar(byte)))' at byte \(at)")
            }
            at += 1
        }

        mutating func value(depth: Int) throws(ParseError) -> PythonLiteral {
            guard depth < 16 else { throw ParseError(reason: "nested too deeply") }
            skipSpace()
            guard let b = peek else { throw ParseError(reason: "unexpected end") }
            switch b {
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                at += 1
                let start = at
                while let c = peek, c != b {
                    guard c != UInt8(ascii: "\\"), c != 10 else { throw ParseError(reason: "escapes and newlines in strings are not read") }
                    at += 1
                }
                guard peek == b else { throw ParseError(reason: "unterminated string") }
                at += 1
                return .string(String(decoding: bytes[start..<(at - 1)], as: UTF8.self))
            case UInt8(ascii: "("), UInt8(ascii: "["):
                let close = b == UInt8(ascii: "(") ? UInt8(ascii: ")") : UInt8(ascii: "]")
                at += 1
                var items: [PythonLiteral] = []
                var sawComma = false
                while true {
                    skipSpace()
                    if peek == close { at += 1; break }
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    if peek == UInt8(ascii: ",") { at += 1; sawComma = true; continue }
                    try expect(close)
                    break
                }
                // (4) is the integer 4 in Python, not a tuple: only a comma makes one.
                if close == UInt8(ascii: ")") && items.count == 1 && !sawComma { return items[0] }
                return close == UInt8(ascii: ")") ? .tuple(items) : .list(items)
            default:
                let start = at
                while let c = peek, c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: "_")
                        || (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) { at += 1 }
                let word = String(decoding: bytes[start..<at], as: UTF8.self)
                switch word {
                case "True": return .bool(true)
                case "False": return .bool(false)
                case "None": return .none
                default:
                    let digits = word.hasSuffix("L") ? String(word.dropLast()) : word
                    guard !digits.isEmpty, !digits.contains("_"), let n = Int(digits) else {
                        throw ParseError(reason: word.isEmpty ? "unexpected character at byte \(start)" : "'\(DisplayText.excerpt(word, limit: 24))' is not a literal NumPy writes")
                    }
                    return .int(n)
                }
            }
        }
    }
}
