import WeightStore

/// A value while a template renders, with Python's semantics where Jinja borrows them
/// (truthiness, equality of 1 and 1.0, str() of lists and None).
enum TemplateValue {
    case undefined
    case none
    case bool(Bool)
    case integer(Int)
    case float(Double)
    case string(String)
    case list([TemplateValue])
    /// Keys in insertion order, as Python's dict keeps them.
    case dict(TemplateDict)
    case namespace(TemplateNamespace)
    /// A global function or a method bound to its receiver.
    case function(String, receiver: TemplateBox?)

    init(_ literal: TemplateLiteral) {
        switch literal {
        case .none: self = .none
        case let .bool(b): self = .bool(b)
        case let .integer(i): self = .integer(i)
        case let .float(d): self = .float(d)
        case let .string(s): self = .string(s)
        }
    }

    init(_ json: JSONValue) {
        switch json {
        case .null: self = .none
        case let .bool(b): self = .bool(b)
        case let .integer(i): self = .integer(i)
        case let .number(d): self = .float(d)
        case let .string(s): self = .string(s)
        case let .array(a): self = .list(a.map(TemplateValue.init))
        case let .object(pairs):
            var d = TemplateDict()
            for (k, v) in pairs { d[k] = TemplateValue(v) }
            self = .dict(d)
        }
    }

    var isTrue: Bool {
        switch self {
        case .undefined, .none: false
        case let .bool(b): b
        case let .integer(i): i != 0
        case let .float(d): d != 0
        case let .string(s): !s.isEmpty
        case let .list(l): !l.isEmpty
        case let .dict(d): !d.keys.isEmpty
        case .namespace, .function: true
        }
    }

    var isDefined: Bool { if case .undefined = self { false } else { true } }

    var typeName: String {
        switch self {
        case .undefined: "undefined"
        case .none: "none"
        case .bool: "boolean"
        case .integer: "integer"
        case .float: "float"
        case .string: "string"
        case .list: "list"
        case .dict: "dict"
        case .namespace: "namespace"
        case .function: "function"
        }
    }

    /// What `{{ value }}` writes: Python's str(); an undefined value writes nothing.
    var text: String {
        switch self {
        case .undefined: ""
        case let .string(s): s
        default: repr
        }
    }

    /// Python's repr(), which str() of a list or dict applies to its items.
    var repr: String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case let .bool(b): b ? "True" : "False"
        case let .integer(i): String(i)
        case let .float(d): Self.pythonFloat(d)
        case let .string(s): Self.pythonQuoted(s)
        case let .list(l): "[" + l.map(\.repr).joined(separator: ", ") + "]"
        case let .dict(d): "{" + d.keys.map { "\(Self.pythonQuoted($0)): \(d[$0]!.repr)" }.joined(separator: ", ") + "}"
        case .namespace: "<Namespace>"
        case let .function(name, _): "<function \(name)>"
        }
    }

    static func pythonFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        if d == d.rounded(), abs(d) < 1e16 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    static func pythonQuoted(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(scalar) == quote { out += "\\" + String(quote) }
                else if scalar.value < 0x20 || scalar.value == 0x7F { out += String(format: "\\x%02x", scalar.value) }
                else { out.unicodeScalars.append(scalar) }
            }
        }
        out.append(quote)
        return out
    }

    /// Python's ==: numbers by value across int, float and bool; containers item by item.
    static func equal(_ a: TemplateValue, _ b: TemplateValue) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(x), .string(y)): return x == y
        case let (.list(x), .list(y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case let (.dict(x), .dict(y)):
            return x.keys.count == y.keys.count && x.keys.allSatisfy { k in y[k].map { equal(x[k]!, $0) } ?? false }
        case let (.namespace(x), .namespace(y)): return x === y
        default:
            if let x = a.number, let y = b.number { return x == y }
            return false
        }
    }

    /// The value as a number, for arithmetic and comparison (bool counts, as in Python).
    var number: Double? {
        switch self {
        case let .integer(i): Double(i)
        case let .float(d): d
        case let .bool(b): b ? 1 : 0
        default: nil
        }
    }
}

/// A dict with Python's insertion order.
struct TemplateDict {
    private(set) var keys: [String] = []
    private var values: [String: TemplateValue] = [:]

    subscript(key: String) -> TemplateValue? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }
}

/// namespace(): the one mutable value, shared by reference so that a loop's body can change
/// what the template sees after the loop.
final class TemplateNamespace {
    var attributes = TemplateDict()
}

/// The receiver of a bound method.
final class TemplateBox {
    let value: TemplateValue
    init(_ value: TemplateValue) { self.value = value }
}
