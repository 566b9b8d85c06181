import Foundation
import WeightStore

/// The functions, methods, filters and tests templates may use. Each follows Jinja's (or, for
/// methods, Python's) definition; a name not listed here is an error naming it, never a value
/// that renders as something else.
enum TemplateBuiltins {
    static let functions: Set<String> = ["raise_exception", "namespace", "range", "strftime_now"]
    static let dictMethods: Set<String> = ["items", "keys", "values", "get"]
    static let stringMethods: Set<String> = ["strip", "lstrip", "rstrip", "startswith", "endswith", "split", "upper",
                                             "lower", "title", "capitalize", "replace", "join"]
    static let listMethods: Set<String> = []
    static let maximumRange = 1 << 20

    typealias Value = TemplateValue

    // MARK: Functions and methods

    static func call(_ name: String, receiver: Value?, _ args: [Value], _ keyword: [(String, Value)],
                     _ r: inout TemplateRenderer) throws -> Value {
        func fail(_ m: String) -> ChatTemplateError { r.fail(m) }
        func string(_ v: Value, _ what: String) throws -> String {
            guard case let .string(s) = v else { throw fail("\(name)(): \(what) must be a string, not a \(v.typeName)") }
            return s
        }
        if let receiver {
            switch (receiver, name) {
            case let (.dict(d), "items"): return .list(d.keys.map { .list([.string($0), d[$0]!]) })
            case let (.dict(d), "keys"): return .list(d.keys.map { .string($0) })
            case let (.dict(d), "values"): return .list(d.keys.map { d[$0]! })
            case let (.dict(d), "get"):
                guard let key = args.first else { throw fail("get() needs a key") }
                return d[try string(key, "the key")] ?? (args.count > 1 ? args[1] : .none)
            case let (.string(s), _): return try stringMethod(name, s, args, keyword, fail)
            default: throw fail("a \(receiver.typeName) has no method '\(name)'")
            }
        }
        switch name {
        case "raise_exception":
            throw ChatTemplateError.raised(args.first?.text ?? "raise_exception() was called")
        case "namespace":
            let ns = TemplateNamespace()
            if case let .dict(d)? = args.first { for k in d.keys { ns.attributes[k] = d[k]! } }
            for (k, v) in keyword { ns.attributes[k] = v }
            return .namespace(ns)
        case "range":
            let ints = try args.map { v -> Int in
                guard case let .integer(i) = v else { throw fail("range() takes integers, not a \(v.typeName)") }
                return i
            }
            guard (1...3).contains(ints.count) else { throw fail("range() takes 1 to 3 integers") }
            let (start, stop, step) = ints.count == 1 ? (0, ints[0], 1) : (ints[0], ints[1], ints.count == 3 ? ints[2] : 1)
            guard step != 0 else { throw fail("range() step cannot be zero") }
            let count = step > 0 ? Swift.max(0, (stop - start + step - 1) / step) : Swift.max(0, (start - stop - step - 1) / -step)
            guard count <= maximumRange else { throw fail("range() of \(count) numbers is more than \(maximumRange)") }
            try r.step(count)
            return .list(Swift.stride(from: start, to: stop, by: step).map { .integer($0) })
        case "strftime_now":
            let format = try string(args.first ?? .undefined, "the format")
            var now = time(nil)
            var parts = tm()
            localtime_r(&now, &parts)
            var buffer = [CChar](repeating: 0, count: 512)
            let n = strftime(&buffer, buffer.count, format, &parts)
            return .string(String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        default:
            throw fail("unknown function '\(name)'")
        }
    }

    static func isPythonSpace(_ s: Unicode.Scalar) -> Bool {
        s.properties.isWhitespace || (0x1C...0x1F).contains(s.value)
    }

    static func stripped(_ s: String, chars: String?, leading: Bool, trailing: Bool) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        func strip(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isPythonSpace(c) }
        var scalars = Array(s.unicodeScalars)
        if trailing { while let last = scalars.last, strip(last) { scalars.removeLast() } }
        if leading { scalars = Array(scalars.drop(while: strip)) }
        var out = ""
        out.unicodeScalars.append(contentsOf: scalars)
        return out
    }

    private static func stringMethod(_ name: String, _ s: String, _ args: [Value], _ keyword: [(String, Value)],
                                     _ fail: (String) -> ChatTemplateError) throws -> Value {
        func arg(_ i: Int) throws -> String? {
            guard i < args.count else { return nil }
            if case .none = args[i] { return nil }
            guard case let .string(x) = args[i] else { throw fail("\(name)(): argument \(i + 1) must be a string") }
            return x
        }
        switch name {
        case "strip": return .string(stripped(s, chars: try arg(0), leading: true, trailing: true))
        case "lstrip": return .string(stripped(s, chars: try arg(0), leading: true, trailing: false))
        case "rstrip": return .string(stripped(s, chars: try arg(0), leading: false, trailing: true))
        case "startswith", "endswith":
            var options: [String] = []
            if case let .list(l)? = args.first { options = l.compactMap { if case let .string(x) = $0 { x } else { nil } } }
            else if let x = try arg(0) { options = [x] }
            guard !options.isEmpty else { throw fail("\(name)() needs a string") }
            let bytes = Array(s.utf8)
            return .bool(options.contains { o in
                let p = Array(o.utf8)
                return name == "startswith" ? bytes.starts(with: p) : bytes.reversed().starts(with: p.reversed())
            })
        case "split":
            let separator = try arg(0)
            var limit = -1
            if args.count > 1, case let .integer(i) = args[1] { limit = i }
            for (k, v) in keyword where k == "maxsplit" { if case let .integer(i) = v { limit = i } }
            if let separator {
                guard !separator.isEmpty else { throw fail("split(): empty separator") }
                var parts: [String] = []
                var rest = Substring(s)
                while limit < 0 || parts.count < limit, let range = rest.range(of: separator) {
                    parts.append(String(rest[..<range.lowerBound]))
                    rest = rest[range.upperBound...]
                }
                parts.append(String(rest))
                return .list(parts.map { .string($0) })
            }
            return .list(s.unicodeScalars.split(whereSeparator: isPythonSpace).map { .string(String($0)) })
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "title": return .string(title(s))
        case "capitalize": return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "replace":
            guard let old = try arg(0), let new = try arg(1) else { throw fail("replace() needs two strings") }
            return .string(s.replacingOccurrences(of: old, with: new))
        case "join":
            guard case let .list(items)? = args.first else { throw fail("join() needs a list") }
            return .string(items.map(\.text).joined(separator: s))
        default: throw fail("a string has no method '\(name)'")
        }
    }

    /// Python's str.title(): a letter after a non-letter starts a word.
    static func title(_ s: String) -> String {
        var out = ""
        var previousIsLetter = false
        for c in s {
            out += previousIsLetter ? c.lowercased() : c.uppercased()
            previousIsLetter = c.isLetter
        }
        return out
    }

    // MARK: Filters

    static func filter(_ name: String, _ value: Value, _ args: [Value], _ keyword: [(String, Value)],
                       _ r: inout TemplateRenderer) throws -> Value {
        func fail(_ m: String) -> ChatTemplateError { r.fail("filter '\(name)': \(m)") }
        func keywordArg(_ key: String, _ position: Int) -> Value? {
            keyword.first { $0.0 == key }?.1 ?? (position < args.count ? args[position] : nil)
        }
        switch name {
        case "trim":
            guard case let .string(s) = value else { throw fail("needs a string, not a \(value.typeName)") }
            var chars: String? = nil
            if case let .string(c)? = keywordArg("chars", 0) { chars = c }
            return .string(stripped(s, chars: chars, leading: true, trailing: true))
        case "length", "count":
            switch value {
            case let .string(s): return .integer(s.count)
            case let .list(l): return .integer(l.count)
            case let .dict(d): return .integer(d.keys.count)
            case .undefined: return .integer(0)
            default: throw fail("a \(value.typeName) has no length")
            }
        case "upper", "lower", "capitalize", "title":
            guard case let .string(s) = value else { throw fail("needs a string, not a \(value.typeName)") }
            return try stringMethod(name, s, [], [], { m in r.fail(m) })
        case "string": return .string(value.text)
        case "safe": return value
        case "int":
            switch value {
            case let .integer(i): return .integer(i)
            case let .float(d): return .integer(d.isFinite && abs(d) < 9e18 ? Int(d) : 0)
            case let .bool(b): return .integer(b ? 1 : 0)
            case let .string(s): return .integer(Int(s.trimmingCharacters(in: .whitespaces)) ?? 0)
            default: return .integer(0)
            }
        case "float":
            switch value {
            case let .string(s): return .float(Double(s.trimmingCharacters(in: .whitespaces)) ?? 0)
            default: return .float(value.number ?? 0)
            }
        case "abs":
            switch value {
            case let .integer(i): return .integer(i == Int.min ? i : abs(i))
            case let .float(d): return .float(abs(d))
            default: throw fail("needs a number")
            }
        case "first", "last":
            switch value {
            case let .list(l): return (name == "first" ? l.first : l.last) ?? .undefined
            case let .string(s): return (name == "first" ? s.first : s.last).map { .string(String($0)) } ?? .undefined
            default: throw fail("needs a list or string, not a \(value.typeName)")
            }
        case "join":
            guard case let .list(items) = value else { throw fail("needs a list, not a \(value.typeName)") }
            let separator = keywordArg("d", 0)?.text ?? ""
            if case let .string(attribute)? = keyword.first(where: { $0.0 == "attribute" })?.1 {
                return .string(items.map { item -> String in
                    if case let .dict(d) = item { return d[attribute]?.text ?? "" }
                    return ""
                }.joined(separator: separator))
            }
            return .string(items.map(\.text).joined(separator: separator))
        case "default", "d":
            let fallback = keywordArg("default_value", 0) ?? .string("")
            let boolean = keywordArg("boolean", 1)?.isTrue ?? false
            if !value.isDefined || (boolean && !value.isTrue) { return fallback }
            return value
        case "items":
            guard case let .dict(d) = value else { throw fail("needs a dict, not a \(value.typeName)") }
            return .list(d.keys.map { .list([.string($0), d[$0]!]) })
        case "list":
            switch value {
            case let .list(l): return .list(l)
            case let .string(s): return .list(s.map { .string(String($0)) })
            case let .dict(d): return .list(d.keys.map { .string($0) })
            default: throw fail("cannot make a list of a \(value.typeName)")
            }
        case "reverse":
            switch value {
            case let .list(l): return .list(l.reversed())
            case let .string(s): return .string(String(s.reversed()))
            default: throw fail("cannot reverse a \(value.typeName)")
            }
        case "replace":
            guard case let .string(s) = value, args.count >= 2 else { throw fail("needs a string and two arguments") }
            return .string(s.replacingOccurrences(of: args[0].text, with: args[1].text))
        case "tojson":
            var indent: Int? = nil
            if case let .integer(i)? = keywordArg("indent", 0) { indent = i }
            var out = ""
            try TemplateJSON.write(value, indent: indent, level: 0, into: &out, fail: { m in r.fail(m) })
            return .string(out)
        case "selectattr", "rejectattr":
            guard case let .list(items) = value else { throw fail("needs a list, not a \(value.typeName)") }
            guard case let .string(attribute)? = args.first else { throw fail("needs an attribute name") }
            let testName: String? = args.count > 1 ? args[1].text : nil
            let testArgs = Array(args.dropFirst(2))
            return .list(try items.filter { item in
                var field: Value = .undefined
                if case let .dict(d) = item { field = d[attribute] ?? .undefined }
                let pass = try testName.map { try test($0, field, testArgs, line: r.currentLine) } ?? field.isTrue
                return pass == (name == "selectattr")
            })
        case "select", "reject":
            guard case let .list(items) = value else { throw fail("needs a list, not a \(value.typeName)") }
            let testName: String? = args.first?.text
            let testArgs = Array(args.dropFirst(1))
            return .list(try items.filter { item in
                let pass = try testName.map { try test($0, item, testArgs, line: r.currentLine) } ?? item.isTrue
                return pass == (name == "select")
            })
        case "map":
            guard case let .list(items) = value else { throw fail("needs a list, not a \(value.typeName)") }
            if case let .string(attribute)? = keyword.first(where: { $0.0 == "attribute" })?.1 {
                let fallback = keyword.first(where: { $0.0 == "default" })?.1 ?? .undefined
                return .list(items.map { item in
                    if case let .dict(d) = item { return d[attribute] ?? fallback }
                    return fallback
                })
            }
            guard case let .string(filterName)? = args.first else { throw fail("needs a filter name or attribute=") }
            return .list(try items.map { try filter(filterName, $0, Array(args.dropFirst()), [], &r) })
        default:
            throw ChatTemplateError.unsupported(line: r.currentLine, "the filter '\(name)'")
        }
    }

    // MARK: Tests

    static func test(_ name: String, _ value: Value, _ args: [Value], line: Int) throws -> Bool {
        func argument() throws -> Value {
            guard let a = args.first else { throw ChatTemplateError.render(line: line, "the test '\(name)' needs an argument") }
            return a
        }
        switch name {
        case "defined": return value.isDefined
        case "undefined": return !value.isDefined
        case "none": if case .none = value { return true } else { return false }
        case "string": if case .string = value { return true } else { return false }
        case "number": switch value { case .integer, .float: return true; default: return false }
        case "integer": if case .integer = value { return true } else { return false }
        case "float": if case .float = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "mapping": switch value { case .dict, .namespace: return true; default: return false }
        case "iterable", "sequence": switch value { case .list, .dict, .string: return true; default: return false }
        case "callable": if case .function = value { return true } else { return false }
        case "even", "odd":
            guard case let .integer(i) = value else { throw ChatTemplateError.render(line: line, "the test '\(name)' needs an integer") }
            return (i % 2 == 0) == (name == "even")
        case "divisibleby":
            guard case let .integer(i) = value, case let .integer(n) = try argument(), n != 0 else {
                throw ChatTemplateError.render(line: line, "'divisibleby' needs non-zero integers")
            }
            return i % n == 0
        case "eq", "equalto", "==": return TemplateValue.equal(value, try argument())
        case "ne", "!=": return !TemplateValue.equal(value, try argument())
        case "lt", "<", "gt", ">", "le", "<=", "ge", ">=":
            guard let x = value.number, let y = try argument().number else {
                throw ChatTemplateError.render(line: line, "the test '\(name)' compares numbers")
            }
            switch name {
            case "lt", "<": return x < y
            case "gt", ">": return x > y
            case "le", "<=": return x <= y
            default: return x >= y
            }
        case "in":
            switch try argument() {
            case let .list(l): return l.contains { TemplateValue.equal($0, value) }
            case let .string(s): if case let .string(x) = value { return s.contains(x) } else { return false }
            case let .dict(d): if case let .string(x) = value { return d[x] != nil } else { return false }
            default: return false
            }
        case "lower": if case let .string(s) = value { return s == s.lowercased() } else { return false }
        case "upper": if case let .string(s) = value { return s == s.uppercased() } else { return false }
        case "sameas":
            let other = try argument()
            if case let .namespace(a) = value, case let .namespace(b) = other { return a === b }
            return TemplateValue.equal(value, other) && value.typeName == other.typeName
        default:
            throw ChatTemplateError.unsupported(line: line, "the test '\(name)'")
        }
    }
}

/// tojson as transformers defines it: json.dumps with ensure_ascii off, keys in their order,
/// Python's separators (", " and ": ", or "," and ": " with an indent).
enum TemplateJSON {
    static func write(_ v: TemplateValue, indent: Int?, level: Int, into out: inout String,
                      fail: (String) -> ChatTemplateError) throws {
        guard level < 100 else { throw fail("tojson: nesting deeper than 100") }
        let newline = indent.map { "\n" + String(repeating: " ", count: $0 * (level + 1)) }
        let closing = indent.map { "\n" + String(repeating: " ", count: $0 * level) } ?? ""
        let comma = indent == nil ? ", " : ","
        switch v {
        case .none, .undefined: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .integer(i): out += String(i)
        case let .float(d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d > 0 ? "Infinity" : "-Infinity" } else { out += TemplateValue.pythonFloat(d) }
        case let .string(s): out += JSONValue.quoted(s)
        case let .list(items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += comma }
                if let newline { out += newline }
                try write(item, indent: indent, level: level + 1, into: &out, fail: fail)
            }
            out += closing + "]"
        case let .dict(d):
            if d.keys.isEmpty { out += "{}"; return }
            out += "{"
            for (i, k) in d.keys.enumerated() {
                if i > 0 { out += comma }
                if let newline { out += newline }
                out += JSONValue.quoted(k)
                out += ": "
                try write(d[k]!, indent: indent, level: level + 1, into: &out, fail: fail)
            }
            out += closing + "}"
        case .namespace, .function: throw fail("tojson: a \(v.typeName) is not JSON")
        }
    }
}
