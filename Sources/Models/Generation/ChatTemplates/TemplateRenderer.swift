/// Renders a parsed template: Jinja's scoping (a for loop's body has its own scope, `if`
/// does not, a namespace is shared), loop variables, and bounds on output and work so that a
/// hostile template ends with an error instead of filling memory or never finishing.
struct TemplateRenderer {
    static let maximumOutput = 16 << 20
    static let maximumSteps = 1_000_000

    private var scopes: [[String: TemplateValue]]
    private(set) var output = ""
    private var steps = 0
    private var line = 1

    init(globals: [String: TemplateValue]) { scopes = [globals] }

    enum Flow { case normal, breakLoop, continueLoop }

    mutating func render(_ nodes: [TemplateNode]) throws {
        let flow = try run(nodes)
        if flow != .normal { throw ChatTemplateError.syntax(line: line, "'break' or 'continue' outside a for loop") }
    }

    private mutating func run(_ nodes: [TemplateNode]) throws -> Flow {
        for node in nodes {
            try step()
            switch node {
            case let .text(t): try write(t)
            case let .output(e, l):
                line = l
                try write(try evaluate(e).text)
            case let .ifChain(branches, otherwise, l):
                line = l
                var chosen = otherwise
                for (condition, body) in branches {
                    if try evaluate(condition).isTrue { chosen = body; break }
                }
                let flow = try run(chosen)
                if flow != .normal { return flow }
            case let .forLoop(targets, iterable, filter, body, otherwise, l):
                line = l
                try loop(targets: targets, over: try evaluate(iterable), filter: filter, body: body, otherwise: otherwise)
            case let .set(name, attribute, e, l):
                line = l
                let value = try evaluate(e)
                if let attribute {
                    guard case let .namespace(ns) = lookup(name) else {
                        throw ChatTemplateError.render(line: l, "'set \(name).\(attribute)' needs '\(name)' to be a namespace()")
                    }
                    ns.attributes[attribute] = value
                } else {
                    scopes[scopes.count - 1][name] = value
                }
            case let .setBlock(name, body, l):
                line = l
                let saved = output
                output = ""
                let flow = try run(body)
                let captured = output
                output = saved
                scopes[scopes.count - 1][name] = .string(captured)
                if flow != .normal { return flow }
            case .breakLoop: return .breakLoop
            case .continueLoop: return .continueLoop
            }
        }
        return .normal
    }

    private mutating func loop(targets: [String], over sequence: TemplateValue, filter: TemplateExpr?,
                               body: [TemplateNode], otherwise: [TemplateNode]) throws {
        var items: [TemplateValue]
        switch sequence {
        case let .list(l): items = l
        case let .dict(d): items = d.keys.map { .string($0) }
        case let .string(s): items = s.map { .string(String($0)) }
        case .undefined, .none: items = []
        default: throw ChatTemplateError.render(line: line, "a for loop cannot go over a \(sequence.typeName)")
        }
        scopes.append([:])
        defer { scopes.removeLast() }
        if let filter {
            var kept: [TemplateValue] = []
            for item in items {
                try bind(targets, to: item)
                if try evaluate(filter).isTrue { kept.append(item) }
            }
            items = kept
        }
        guard !items.isEmpty else {
            _ = try run(otherwise)
            return
        }
        for (i, item) in items.enumerated() {
            var info = TemplateDict()
            info["index0"] = .integer(i)
            info["index"] = .integer(i + 1)
            info["revindex0"] = .integer(items.count - 1 - i)
            info["revindex"] = .integer(items.count - i)
            info["first"] = .bool(i == 0)
            info["last"] = .bool(i == items.count - 1)
            info["length"] = .integer(items.count)
            info["previtem"] = i > 0 ? items[i - 1] : .undefined
            info["nextitem"] = i + 1 < items.count ? items[i + 1] : .undefined
            scopes[scopes.count - 1] = ["loop": .dict(info)]
            try bind(targets, to: item)
            let flow = try run(body)
            if flow == .breakLoop { break }
        }
    }

    private mutating func bind(_ targets: [String], to item: TemplateValue) throws {
        if targets.count == 1 {
            scopes[scopes.count - 1][targets[0]] = item
            return
        }
        guard case let .list(parts) = item, parts.count == targets.count else {
            throw ChatTemplateError.render(line: line, "cannot unpack a \(item.typeName) into \(targets.count) names")
        }
        for (t, v) in zip(targets, parts) { scopes[scopes.count - 1][t] = v }
    }

    func lookup(_ name: String) -> TemplateValue {
        for scope in scopes.reversed() { if let v = scope[name] { return v } }
        return .undefined
    }

    private mutating func write(_ s: String) throws {
        output += s
        if output.utf8.count > Self.maximumOutput {
            throw ChatTemplateError.render(line: line, "the rendered text grows past \(Self.maximumOutput) bytes")
        }
    }

    mutating func step(_ count: Int = 1) throws {
        steps += count
        if steps > Self.maximumSteps { throw ChatTemplateError.render(line: line, "rendering takes more than \(Self.maximumSteps) steps") }
    }

    var currentLine: Int { line }

    func fail(_ m: String) -> ChatTemplateError { .render(line: line, m) }

    // MARK: Expressions

    mutating func evaluate(_ e: TemplateExpr) throws -> TemplateValue {
        try step()
        switch e {
        case let .literal(l): return TemplateValue(l)
        case let .name(n):
            let v = lookup(n)
            if case .undefined = v, TemplateBuiltins.functions.contains(n) { return .function(n, receiver: nil) }
            return v
        case let .list(items): return .list(try items.map { try evaluate($0) })
        case let .dict(pairs):
            var d = TemplateDict()
            for (k, v) in pairs {
                guard case let .string(key) = try evaluate(k) else { throw fail("dict keys must be strings") }
                d[key] = try evaluate(v)
            }
            return .dict(d)
        case let .attribute(base, name): return try member(try evaluate(base), name)
        case let .index(base, index): return try item(try evaluate(base), try evaluate(index))
        case let .slice(base, start, stop, stepExpr):
            return try slice(try evaluate(base), start.map { try evaluate($0) }, stop.map { try evaluate($0) }, stepExpr.map { try evaluate($0) })
        case let .call(callee, args):
            let f = try evaluate(callee)
            guard case let .function(name, receiver) = f else { throw fail("a \(f.typeName) cannot be called") }
            let (positional, keyword) = try arguments(args)
            return try TemplateBuiltins.call(name, receiver: receiver?.value, positional, keyword, &self)
        case let .filter(base, name, args):
            let (positional, keyword) = try arguments(args)
            return try TemplateBuiltins.filter(name, try evaluate(base), positional, keyword, &self)
        case let .test(base, name, args, negated):
            let (positional, _) = try arguments(args)
            let result = try TemplateBuiltins.test(name, try evaluate(base), positional, line: line)
            return .bool(result != negated)
        case let .negate(x):
            switch try evaluate(x) {
            case let .integer(i): return .integer(0 &- i)
            case let .float(d): return .float(-d)
            case let v: throw fail("cannot negate a \(v.typeName)")
            }
        case let .not(x): return .bool(!(try evaluate(x).isTrue))
        case let .and(a, b):
            let x = try evaluate(a)
            return x.isTrue ? try evaluate(b) : x
        case let .or(a, b):
            let x = try evaluate(a)
            return x.isTrue ? x : try evaluate(b)
        case let .conditional(then, condition, otherwise):
            if try evaluate(condition).isTrue { return try evaluate(then) }
            return try otherwise.map { try evaluate($0) } ?? .undefined
        case let .binary(op, a, b): return try binary(op, try evaluate(a), try evaluate(b))
        }
    }

    private mutating func arguments(_ args: TemplateArguments) throws -> ([TemplateValue], [(String, TemplateValue)]) {
        (try args.positional.map { try evaluate($0) }, try args.keyword.map { ($0.0, try evaluate($0.1)) })
    }

    /// `a.b`: as Jinja, the attribute first (a dict's attributes are its methods, called as
    /// `message.items()`), then the key (`message.content`).
    private func member(_ base: TemplateValue, _ name: String) throws -> TemplateValue {
        switch base {
        case let .dict(d):
            if TemplateBuiltins.dictMethods.contains(name) { return .function(name, receiver: TemplateBox(base)) }
            return d[name] ?? .undefined
        case let .namespace(ns): return ns.attributes[name] ?? .undefined
        case .string:
            if TemplateBuiltins.stringMethods.contains(name) { return .function(name, receiver: TemplateBox(base)) }
            return .undefined
        case .list:
            if TemplateBuiltins.listMethods.contains(name) { return .function(name, receiver: TemplateBox(base)) }
            return .undefined
        case .undefined: throw fail("'\(name)' of an undefined value")
        default: return .undefined
        }
    }

    private func item(_ base: TemplateValue, _ index: TemplateValue) throws -> TemplateValue {
        switch (base, index) {
        case let (.dict(d), .string(k)): return d[k] ?? .undefined
        case let (.namespace(ns), .string(k)): return ns.attributes[k] ?? .undefined
        case let (.list(l), .integer(i)):
            let j = i < 0 ? l.count + i : i
            return l.indices.contains(j) ? l[j] : .undefined
        case let (.string(s), .integer(i)):
            let chars = Array(s)
            let j = i < 0 ? chars.count + i : i
            return chars.indices.contains(j) ? .string(String(chars[j])) : .undefined
        case (.undefined, _): throw fail("a subscript of an undefined value")
        case (.dict, _), (.list, _), (.string, _): return .undefined
        default: throw fail("a \(base.typeName) cannot be subscripted")
        }
    }

    private func slice(_ base: TemplateValue, _ start: TemplateValue?, _ stop: TemplateValue?, _ stepValue: TemplateValue?) throws -> TemplateValue {
        func int(_ v: TemplateValue?) throws -> Int? {
            switch v {
            case nil, .none?: return nil
            case let .integer(i)?: return i
            default: throw fail("slice bounds must be integers")
            }
        }
        let stride = try int(stepValue) ?? 1
        guard stride != 0 else { throw fail("a slice step cannot be zero") }
        func indices(_ count: Int) throws -> [Int] {
            func clamp(_ v: Int?, _ defaultValue: Int) -> Int {
                guard var v else { return defaultValue }
                if v < 0 { v += count }
                return stride > 0 ? Swift.min(Swift.max(v, 0), count) : Swift.min(Swift.max(v, -1), count - 1)
            }
            let from = clamp(try int(start), stride > 0 ? 0 : count - 1)
            let to = clamp(try int(stop), stride > 0 ? count : -1)
            return Array(Swift.stride(from: from, to: to, by: stride))
        }
        switch base {
        case let .list(l): return .list(try indices(l.count).map { l[$0] })
        case let .string(s):
            let chars = Array(s)
            return .string(String(try indices(chars.count).map { chars[$0] }))
        default: throw fail("a \(base.typeName) cannot be sliced")
        }
    }

    private func binary(_ op: String, _ a: TemplateValue, _ b: TemplateValue) throws -> TemplateValue {
        switch op {
        case "==": return .bool(TemplateValue.equal(a, b))
        case "!=": return .bool(!TemplateValue.equal(a, b))
        case "~": return .string(a.text + b.text)
        case "in":
            switch b {
            case let .string(s):
                guard case let .string(needle) = a else { throw fail("'in <string>' needs a string on the left, not a \(a.typeName)") }
                return .bool(needle.isEmpty || s.contains(needle))
            case let .list(l): return .bool(l.contains { TemplateValue.equal($0, a) })
            case let .dict(d):
                guard case let .string(k) = a else { return .bool(false) }
                return .bool(d[k] != nil)
            case .undefined: throw fail("'in' an undefined value")
            default: throw fail("'in' needs a string, list or dict, not a \(b.typeName)")
            }
        case "<", ">", "<=", ">=":
            let order: Int
            if case let .string(x) = a, case let .string(y) = b {
                order = x == y ? 0 : (Array(x.unicodeScalars.map(\.value)).lexicographicallyPrecedes(y.unicodeScalars.map(\.value)) ? -1 : 1)
            } else if let x = a.number, let y = b.number {
                order = x == y ? 0 : (x < y ? -1 : 1)
            } else {
                throw fail("cannot compare a \(a.typeName) with a \(b.typeName)")
            }
            switch op {
            case "<": return .bool(order < 0)
            case ">": return .bool(order > 0)
            case "<=": return .bool(order <= 0)
            default: return .bool(order >= 0)
            }
        case "+":
            switch (a, b) {
            case let (.string(x), .string(y)): return .string(x + y)
            case let (.list(x), .list(y)): return .list(x + y)
            default: return try arithmetic(op, a, b)
            }
        case "*":
            if case let .string(s) = a, case let .integer(n) = b { return .string(String(repeating: s, count: Swift.max(0, Swift.min(n, Self.maximumOutput / Swift.max(1, s.utf8.count))))) }
            return try arithmetic(op, a, b)
        default: return try arithmetic(op, a, b)
        }
    }

    private func arithmetic(_ op: String, _ a: TemplateValue, _ b: TemplateValue) throws -> TemplateValue {
        func isInteger(_ v: TemplateValue) -> Bool { if case .integer = v { true } else if case .bool = v { true } else { false } }
        guard let x = a.number, let y = b.number else {
            throw fail("'\(op)' of a \(a.typeName) and a \(b.typeName)")
        }
        if isInteger(a), isInteger(b), op != "/" {
            let i = Int(x), j = Int(y)
            switch op {
            case "+": return .integer(i &+ j)
            case "-": return .integer(i &- j)
            case "*": return .integer(i &* j)
            case "//", "%":
                guard j != 0 else { throw fail("division by zero") }
                let q = Int((Double(i) / Double(j)).rounded(.down))
                return op == "//" ? .integer(q) : .integer(i - q * j)
            default: break
            }
        }
        switch op {
        case "+": return .float(x + y)
        case "-": return .float(x - y)
        case "*": return .float(x * y)
        case "/":
            guard y != 0 else { throw fail("division by zero") }
            return .float(x / y)
        case "//":
            guard y != 0 else { throw fail("division by zero") }
            return .float((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw fail("division by zero") }
            return .float(x - (x / y).rounded(.down) * y)
        default: throw fail("unknown operator '\(op)'")
        }
    }
}
