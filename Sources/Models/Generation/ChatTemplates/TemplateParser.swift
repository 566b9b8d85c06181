/// Builds the syntax tree from the lexer's pieces: statements by their tags, expressions by
/// Jinja's precedence (conditional, or, and, not, comparisons, + -, ~, * / // %, unary minus,
/// then postfix subscripts, attributes, calls, filters and `is` tests).
struct TemplateParser {
    /// Statements wpack does not render; named in the error so a user knows what is missing.
    private static let unsupportedStatements: Set<String> = [
        "macro", "call", "filter", "include", "import", "from", "extends", "block", "raw", "with",
        "autoescape", "generation", "do", "trans",
    ]
    private static let maximumDepth = 200

    private let pieces: [TemplateLexer.Piece]
    private var at = 0

    static func parse(_ source: String) throws -> [TemplateNode] {
        var parser = TemplateParser(pieces: try TemplateLexer.pieces(source))
        let (nodes, end) = try parser.body(until: [], depth: 0)
        if let end { throw ChatTemplateError.syntax(line: end.line, "'\(end.keyword)' without an opening tag") }
        return nodes
    }

    private init(pieces: [TemplateLexer.Piece]) { self.pieces = pieces }

    private struct End { var keyword: String; var tokens: TagTokens; var line: Int }

    /// Nodes up to one of the `until` keywords (returned with the rest of its tag), or to the
    /// end of the template when `until` is empty.
    private mutating func body(until: Set<String>, depth: Int) throws -> ([TemplateNode], End?) {
        var nodes: [TemplateNode] = []
        while at < pieces.count {
            let piece = pieces[at]
            at += 1
            switch piece {
            case let .text(t): nodes.append(.text(t))
            case let .output(tokens, line):
                var stream = TagTokens(tokens: tokens, line: line)
                let e = try stream.expression(depth: depth)
                try stream.expectEnd()
                nodes.append(.output(e, line: line))
            case let .statement(tokens, line):
                var stream = TagTokens(tokens: tokens, line: line)
                guard case let .name(keyword)? = stream.next() else {
                    throw ChatTemplateError.syntax(line: line, "a statement tag must start with a keyword")
                }
                if until.contains(keyword) { return (nodes, End(keyword: keyword, tokens: stream, line: line)) }
                nodes.append(try statement(keyword, &stream, line: line, depth: depth + 1))
            }
        }
        if let first = until.sorted().first, !until.isEmpty {
            throw ChatTemplateError.syntax(line: lastLine, "the template ends before its '\(first)'")
        }
        return (nodes, nil)
    }

    private var lastLine: Int {
        for piece in pieces.reversed() {
            switch piece {
            case let .output(_, line), let .statement(_, line): return line
            case .text: continue
            }
        }
        return 1
    }

    private mutating func statement(_ keyword: String, _ s: inout TagTokens, line: Int, depth: Int) throws -> TemplateNode {
        guard depth < Self.maximumDepth else { throw ChatTemplateError.syntax(line: line, "blocks nest deeper than \(Self.maximumDepth)") }
        switch keyword {
        case "for":
            var targets = [try s.name()]
            while s.take(.symbol(",")) { targets.append(try s.name()) }
            guard s.take(.name("in")) else { throw ChatTemplateError.syntax(line: line, "expected 'in' in a for loop") }
            let iterable = try s.orExpression(depth: depth)
            var filter: TemplateExpr? = nil
            if s.take(.name("if")) { filter = try s.expression(depth: depth) }
            if s.take(.name("recursive")) { throw ChatTemplateError.unsupported(line: line, "a recursive for loop") }
            try s.expectEnd()
            let (loopBody, end) = try body(until: ["else", "endfor"], depth: depth)
            var otherwise: [TemplateNode] = []
            if end?.keyword == "else" {
                try end!.tokens.expectEnd()
                let (rest, end2) = try body(until: ["endfor"], depth: depth)
                try end2!.tokens.expectEnd()
                otherwise = rest
            } else {
                try end!.tokens.expectEnd()
            }
            return .forLoop(targets: targets, iterable: iterable, filter: filter, body: loopBody, otherwise: otherwise, line: line)
        case "if":
            var branches: [(TemplateExpr, [TemplateNode])] = []
            var condition = try s.expression(depth: depth)
            try s.expectEnd()
            while true {
                let (nodes, end) = try body(until: ["elif", "else", "endif"], depth: depth)
                branches.append((condition, nodes))
                var rest = end!.tokens
                switch end!.keyword {
                case "elif":
                    condition = try rest.expression(depth: depth)
                    try rest.expectEnd()
                case "else":
                    try rest.expectEnd()
                    let (otherwise, end2) = try body(until: ["endif"], depth: depth)
                    try end2!.tokens.expectEnd()
                    return .ifChain(branches, otherwise: otherwise, line: line)
                default:
                    try rest.expectEnd()
                    return .ifChain(branches, otherwise: [], line: line)
                }
            }
        case "set":
            let name = try s.name()
            var attribute: String? = nil
            if s.take(.symbol(".")) { attribute = try s.name() }
            if s.peek == .symbol(",") { throw ChatTemplateError.unsupported(line: line, "'set' of several names at once") }
            if s.atEnd, attribute == nil {
                let (nodes, end) = try body(until: ["endset"], depth: depth)
                try end!.tokens.expectEnd()
                return .setBlock(name: name, body: nodes, line: line)
            }
            guard s.take(.symbol("=")) else { throw ChatTemplateError.syntax(line: line, "expected '=' after 'set \(name)'") }
            let value = try s.expression(depth: depth)
            try s.expectEnd()
            return .set(name: name, attribute: attribute, value, line: line)
        case "break":
            try s.expectEnd()
            return .breakLoop(line: line)
        case "continue":
            try s.expectEnd()
            return .continueLoop(line: line)
        case "endfor", "endif", "endset", "elif", "else":
            throw ChatTemplateError.syntax(line: line, "'\(keyword)' without an opening tag")
        default:
            if Self.unsupportedStatements.contains(keyword) { throw ChatTemplateError.unsupported(line: line, "the '\(keyword)' statement") }
            throw ChatTemplateError.syntax(line: line, "unknown statement '\(keyword)'")
        }
    }
}

/// The tokens of one tag, read by the expression grammar.
struct TagTokens {
    typealias Token = TemplateLexer.Token
    let tokens: [Token]
    let line: Int
    var at = 0

    init(tokens: [Token], line: Int) {
        self.tokens = tokens
        self.line = line
    }

    var peek: Token? { at < tokens.count ? tokens[at] : nil }
    var atEnd: Bool { at >= tokens.count }

    mutating func next() -> Token? {
        defer { at += 1 }
        return peek
    }

    mutating func take(_ t: Token) -> Bool {
        guard peek == t else { return false }
        at += 1
        return true
    }

    func fail(_ m: String) -> ChatTemplateError { .syntax(line: line, m) }

    func expectEnd() throws {
        if let t = peek { throw fail("unexpected \(Self.describe(t)) at the end of a tag") }
    }

    mutating func expect(_ t: Token) throws {
        guard take(t) else { throw fail("expected \(Self.describe(t)), found \(peek.map(Self.describe) ?? "the end of the tag")") }
    }

    mutating func name() throws -> String {
        guard case let .name(n)? = peek else { throw fail("expected a name, found \(peek.map(Self.describe) ?? "the end of the tag")") }
        at += 1
        return n
    }

    static func describe(_ t: Token) -> String {
        switch t {
        case let .name(n): "'\(n)'"
        case let .string(s): "the string \(s.debugDescription)"
        case let .integer(i): "the number \(i)"
        case let .float(d): "the number \(d)"
        case let .symbol(s): "'\(s)'"
        }
    }

    private func guardDepth(_ depth: Int) throws {
        if depth > 200 { throw fail("an expression nests deeper than 200") }
    }

    mutating func expression(depth: Int) throws -> TemplateExpr {
        try guardDepth(depth)
        var e = try orExpression(depth: depth + 1)
        while take(.name("if")) {
            let condition = try orExpression(depth: depth + 1)
            let otherwise = take(.name("else")) ? try expression(depth: depth + 1) : nil
            e = .conditional(then: e, condition: condition, otherwise: otherwise)
        }
        return e
    }

    mutating func orExpression(depth: Int) throws -> TemplateExpr {
        var e = try andExpression(depth: depth)
        while take(.name("or")) { e = .or(e, try andExpression(depth: depth)) }
        return e
    }

    private mutating func andExpression(depth: Int) throws -> TemplateExpr {
        var e = try notExpression(depth: depth)
        while take(.name("and")) { e = .and(e, try notExpression(depth: depth)) }
        return e
    }

    private mutating func notExpression(depth: Int) throws -> TemplateExpr {
        try guardDepth(depth)
        if take(.name("not")) { return .not(try notExpression(depth: depth + 1)) }
        return try comparison(depth: depth)
    }

    private mutating func comparison(depth: Int) throws -> TemplateExpr {
        var e = try additive(depth: depth)
        while true {
            if case let .symbol(op)? = peek, ["==", "!=", "<", ">", "<=", ">="].contains(op) {
                at += 1
                e = .binary(op, e, try additive(depth: depth))
            } else if take(.name("in")) {
                e = .binary("in", e, try additive(depth: depth))
            } else if peek == .name("not"), at + 1 < tokens.count, tokens[at + 1] == .name("in") {
                at += 2
                e = .not(.binary("in", e, try additive(depth: depth)))
            } else {
                return e
            }
        }
    }

    private mutating func additive(depth: Int) throws -> TemplateExpr {
        var e = try concatenation(depth: depth)
        while case let .symbol(op)? = peek, op == "+" || op == "-" {
            at += 1
            e = .binary(op, e, try concatenation(depth: depth))
        }
        return e
    }

    private mutating func concatenation(depth: Int) throws -> TemplateExpr {
        var e = try multiplicative(depth: depth)
        while take(.symbol("~")) { e = .binary("~", e, try multiplicative(depth: depth)) }
        return e
    }

    private mutating func multiplicative(depth: Int) throws -> TemplateExpr {
        var e = try unary(depth: depth)
        while case let .symbol(op)? = peek, ["*", "/", "//", "%"].contains(op) {
            at += 1
            e = .binary(op, e, try unary(depth: depth))
        }
        if peek == .symbol("**") { throw ChatTemplateError.unsupported(line: line, "the '**' operator") }
        return e
    }

    private mutating func unary(depth: Int) throws -> TemplateExpr {
        try guardDepth(depth)
        if take(.symbol("-")) { return try postfix(.negate(try unary(depth: depth + 1)), depth: depth) }
        if take(.symbol("+")) { return try unary(depth: depth + 1) }
        return try postfix(try primary(depth: depth + 1), depth: depth)
    }

    private mutating func postfix(_ base: TemplateExpr, depth: Int) throws -> TemplateExpr {
        var e = base
        while true {
            if take(.symbol(".")) {
                e = .attribute(e, try name())
            } else if take(.symbol("[")) {
                e = try subscriptOrSlice(e, depth: depth + 1)
            } else if take(.symbol("(")) {
                e = .call(e, try arguments(depth: depth + 1))
            } else if take(.symbol("|")) {
                let filter = try name()
                let args = take(.symbol("(")) ? try arguments(depth: depth + 1) : TemplateArguments()
                e = .filter(e, name: filter, args)
            } else if take(.name("is")) {
                let negated = take(.name("not"))
                let test = try name()
                var args = TemplateArguments()
                if take(.symbol("(")) {
                    args = try arguments(depth: depth + 1)
                } else if let t = peek, Self.startsOperand(t) {
                    // `is divisibleby 3`, `is equalto "x"`: one argument without parentheses.
                    args.positional = [try primary(depth: depth + 1)]
                }
                e = .test(e, name: test, args, negated: negated)
            } else {
                return e
            }
        }
    }

    private static func startsOperand(_ t: Token) -> Bool {
        switch t {
        case .string, .integer, .float: true
        case let .name(n): !["and", "or", "not", "in", "is", "if", "else"].contains(n)
        default: false
        }
    }

    private mutating func subscriptOrSlice(_ base: TemplateExpr, depth: Int) throws -> TemplateExpr {
        var parts: [TemplateExpr?] = []
        var current: TemplateExpr? = nil
        var colons = 0
        while !take(.symbol("]")) {
            if take(.symbol(":")) {
                parts.append(current)
                current = nil
                colons += 1
                guard colons <= 2 else { throw fail("a slice has at most two ':'") }
            } else {
                guard current == nil else { throw fail("expected ']' or ':' in a subscript") }
                guard !atEnd else { throw fail("a subscript is never closed with ']'") }
                current = try expression(depth: depth)
            }
        }
        parts.append(current)
        if colons == 0 {
            guard let index = parts[0] else { throw fail("an empty subscript") }
            return .index(base, index)
        }
        return .slice(base, start: parts[0], stop: parts.count > 1 ? parts[1] : nil, step: parts.count > 2 ? parts[2] : nil)
    }

    /// After "(": positional then keyword arguments, up to ")".
    private mutating func arguments(depth: Int) throws -> TemplateArguments {
        var args = TemplateArguments()
        while !take(.symbol(")")) {
            guard !atEnd else { throw fail("an argument list is never closed with ')'") }
            if case let .name(n)? = peek, at + 1 < tokens.count, tokens[at + 1] == .symbol("=") {
                at += 2
                args.keyword.append((n, try expression(depth: depth)))
            } else {
                guard args.keyword.isEmpty else { throw fail("a positional argument after a keyword argument") }
                args.positional.append(try expression(depth: depth))
            }
            if !take(.symbol(",")) {
                try expect(.symbol(")"))
                break
            }
        }
        return args
    }

    private mutating func primary(depth: Int) throws -> TemplateExpr {
        try guardDepth(depth)
        guard let t = next() else { throw fail("an expression is missing at the end of the tag") }
        switch t {
        case let .string(s):
            // Adjacent literals join, as in Python.
            var text = s
            while case let .string(more)? = peek { text += more; at += 1 }
            return .literal(.string(text))
        case let .integer(i): return .literal(.integer(i))
        case let .float(d): return .literal(.float(d))
        case let .name(n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .symbol("("):
            let e = try expression(depth: depth + 1)
            if peek == .symbol(",") { throw ChatTemplateError.unsupported(line: line, "a tuple expression") }
            try expect(.symbol(")"))
            return e
        case .symbol("["):
            var items: [TemplateExpr] = []
            while !take(.symbol("]")) {
                guard !atEnd else { throw fail("a list is never closed with ']'") }
                items.append(try expression(depth: depth + 1))
                if !take(.symbol(",")) { try expect(.symbol("]")); break }
            }
            return .list(items)
        case .symbol("{"):
            var pairs: [(TemplateExpr, TemplateExpr)] = []
            while !take(.symbol("}")) {
                guard !atEnd else { throw fail("a dict is never closed with '}'") }
                let key = try expression(depth: depth + 1)
                try expect(.symbol(":"))
                pairs.append((key, try expression(depth: depth + 1)))
                if !take(.symbol(",")) { try expect(.symbol("}")); break }
            }
            return .dict(pairs)
        default:
            throw fail("unexpected \(Self.describe(t)) in an expression")
        }
    }
}
