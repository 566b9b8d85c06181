/// Splits a Jinja template into text and tags, applying whitespace control the way
/// transformers' environment does (trim_blocks and lstrip_blocks on, plus the explicit `-`
/// and `+` markers), and splits each tag into tokens.
struct TemplateLexer {
    enum Token: Equatable, Sendable {
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case symbol(String)
    }

    enum Piece: Sendable {
        case text(String)
        case output([Token], line: Int)
        case statement([Token], line: Int)
    }

    /// Longest first, so "//" is not read as two "/".
    private static let symbols = ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=",
                                  "(", ")", "[", "]", "{", "}", ".", ",", ":", "|"]
    static let maximumLength = 1 << 20

    private let bytes: [UInt8]
    private var at = 0
    private var line = 1

    init(_ source: String) { bytes = Array(source.utf8) }

    static func pieces(_ source: String) throws -> [Piece] {
        guard source.utf8.count <= maximumLength else {
            throw ChatTemplateError.syntax(line: 1, "the template is longer than \(maximumLength) bytes")
        }
        var lexer = TemplateLexer(source)
        return try lexer.run()
    }

    private enum Kind { case output, statement, comment }
    private struct Raw { var kind: Kind?; var text: [UInt8]; var tokens: [Token]; var line: Int; var stripBefore: Bool; var stripAfter: Bool; var keepIndent: Bool }

    private mutating func run() throws -> [Piece] {
        var raws: [Raw] = []
        var text: [UInt8] = []
        while at < bytes.count {
            if bytes[at] == UInt8(ascii: "{"), at + 1 < bytes.count, let kind = Self.kind(bytes[at + 1]) {
                raws.append(Raw(kind: nil, text: text, tokens: [], line: line, stripBefore: false, stripAfter: false, keepIndent: false))
                text = []
                let start = line
                at += 2
                var marker: UInt8? = nil
                if at < bytes.count, bytes[at] == UInt8(ascii: "-") || bytes[at] == UInt8(ascii: "+") { marker = bytes[at]; at += 1 }
                var raw = Raw(kind: kind, text: [], tokens: [], line: start, stripBefore: marker == UInt8(ascii: "-"),
                              stripAfter: false, keepIndent: marker == UInt8(ascii: "+"))
                if kind == .comment {
                    raw.stripAfter = try skipComment()
                } else {
                    (raw.tokens, raw.stripAfter) = try tokens(closing: kind == .output ? UInt8(ascii: "}") : UInt8(ascii: "%"), from: start)
                }
                raws.append(raw)
            } else {
                if bytes[at] == UInt8(ascii: "\n") { line += 1 }
                text.append(bytes[at])
                at += 1
            }
        }
        raws.append(Raw(kind: nil, text: text, tokens: [], line: line, stripBefore: false, stripAfter: false, keepIndent: false))
        return applyWhitespaceControl(raws)
    }

    private static func kind(_ b: UInt8) -> Kind? {
        switch b {
        case UInt8(ascii: "{"): .output
        case UInt8(ascii: "%"): .statement
        case UInt8(ascii: "#"): .comment
        default: nil
        }
    }

    /// Whether the comment ends with "-#}".
    private mutating func skipComment() throws -> Bool {
        let start = line
        while at + 1 < bytes.count {
            if bytes[at] == UInt8(ascii: "#"), bytes[at + 1] == UInt8(ascii: "}") {
                let strip = at > 0 && bytes[at - 1] == UInt8(ascii: "-")
                at += 2
                return strip
            }
            if bytes[at] == UInt8(ascii: "\n") { line += 1 }
            at += 1
        }
        throw ChatTemplateError.syntax(line: start, "a comment opened with {# is never closed")
    }

    /// The tokens of one tag up to its closer ("}}" or "%}"), and whether the closer had "-".
    private mutating func tokens(closing: UInt8, from start: Int) throws -> ([Token], Bool) {
        var out: [Token] = []
        func fail(_ m: String) -> ChatTemplateError { .syntax(line: line, m) }
        while true {
            while at < bytes.count, Self.isSpace(bytes[at]) {
                if bytes[at] == UInt8(ascii: "\n") { line += 1 }
                at += 1
            }
            guard at < bytes.count else {
                throw ChatTemplateError.syntax(line: start, "a tag opened here is never closed")
            }
            let b = bytes[at]
            if b == closing, at + 1 < bytes.count, bytes[at + 1] == UInt8(ascii: "}") { at += 2; return (out, false) }
            if b == UInt8(ascii: "-") || b == UInt8(ascii: "+"), at + 2 < bytes.count, bytes[at + 1] == closing, bytes[at + 2] == UInt8(ascii: "}") {
                at += 3
                return (out, b == UInt8(ascii: "-"))
            }
            if b == UInt8(ascii: "'") || b == UInt8(ascii: "\"") {
                out.append(.string(try string(quote: b)))
            } else if Self.isDigit(b) {
                out.append(try number())
            } else if Self.isNameStart(b) {
                let s = at
                while at < bytes.count, Self.isNameStart(bytes[at]) || Self.isDigit(bytes[at]) { at += 1 }
                out.append(.name(String(decoding: bytes[s..<at], as: UTF8.self)))
            } else if let symbol = Self.symbols.first(where: { matches($0) }) {
                at += symbol.utf8.count
                out.append(.symbol(symbol))
            } else {
                throw fail("unexpected character '\(String(decoding: [b], as: UTF8.self))' in a tag")
            }
        }
    }

    private func matches(_ symbol: String) -> Bool {
        let s = Array(symbol.utf8)
        return at + s.count <= bytes.count && Array(bytes[at..<(at + s.count)]) == s
    }

    /// A quoted string with Python's escapes.
    private mutating func string(quote: UInt8) throws -> String {
        let start = line
        at += 1
        var out: [UInt8] = []
        while at < bytes.count {
            let b = bytes[at]
            if b == quote { at += 1; return String(decoding: out, as: UTF8.self) }
            if b == UInt8(ascii: "\n") { line += 1 }
            if b == UInt8(ascii: "\\"), at + 1 < bytes.count {
                let e = bytes[at + 1]
                at += 2
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(e)
                case UInt8(ascii: "\n"): line += 1
                default: out += [UInt8(ascii: "\\"), e]
                }
                continue
            }
            out.append(b)
            at += 1
        }
        throw ChatTemplateError.syntax(line: start, "a string literal is never closed")
    }

    private mutating func number() throws -> Token {
        let s = at
        while at < bytes.count, Self.isDigit(bytes[at]) || bytes[at] == UInt8(ascii: "_") { at += 1 }
        var isFloat = false
        if at + 1 < bytes.count, bytes[at] == UInt8(ascii: "."), Self.isDigit(bytes[at + 1]) {
            isFloat = true
            at += 1
            while at < bytes.count, Self.isDigit(bytes[at]) { at += 1 }
        }
        let text = String(decoding: bytes[s..<at], as: UTF8.self).replacingOccurrences(of: "_", with: "")
        if isFloat, let d = Double(text) { return .float(d) }
        if let i = Int(text) { return .integer(i) }
        throw ChatTemplateError.syntax(line: line, "the number \(text) does not fit")
    }

    /// Strips text around tags: "-" markers strip every whitespace character on their side;
    /// trim_blocks drops the first newline after a statement or comment; lstrip_blocks drops
    /// the spaces and tabs between a line's start and a statement or comment (not after "+").
    private func applyWhitespaceControl(_ raws: [Raw]) -> [Piece] {
        // Decided on the source text, then applied: a piece between two tags can lose its
        // first newline to one and its indent to the other. Text and tags alternate in `raws`.
        var keepFrom = [Int](repeating: 0, count: raws.count)
        var keepTo = raws.map { $0.text.count }
        for i in raws.indices where raws[i].kind != nil {
            let isBlock = raws[i].kind != .output
            let before = raws[i - 1].text
            if raws[i].stripBefore {
                keepTo[i - 1] = Swift.min(keepTo[i - 1], before.count - before.reversed().prefix(while: Self.isSpace).count)
            } else if isBlock && !raws[i].keepIndent {
                var j = before.count
                while j > 0, before[j - 1] == UInt8(ascii: " ") || before[j - 1] == UInt8(ascii: "\t") { j -= 1 }
                let atLineStart = j > 0 ? before[j - 1] == UInt8(ascii: "\n") : i - 1 == 0
                if atLineStart { keepTo[i - 1] = Swift.min(keepTo[i - 1], j) }
            }
            let after = raws[i + 1].text
            if raws[i].stripAfter {
                keepFrom[i + 1] = Swift.max(keepFrom[i + 1], after.prefix(while: Self.isSpace).count)
            } else if isBlock {
                if after.first == UInt8(ascii: "\n") { keepFrom[i + 1] = Swift.max(keepFrom[i + 1], 1) }
                else if after.starts(with: [0x0D, 0x0A]) { keepFrom[i + 1] = Swift.max(keepFrom[i + 1], 2) }
            }
        }
        return raws.indices.compactMap { i in
            let raw = raws[i]
            switch raw.kind {
            case nil:
                guard keepFrom[i] < keepTo[i] else { return nil }
                return .text(String(decoding: raw.text[keepFrom[i]..<keepTo[i]], as: UTF8.self))
            case .output?: return .output(raw.tokens, line: raw.line)
            case .statement?: return .statement(raw.tokens, line: raw.line)
            case .comment?: return nil
            }
        }
    }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C }
    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    static func isNameStart(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F }
}
