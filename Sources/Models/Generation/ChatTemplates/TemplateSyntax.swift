/// The parsed form of a chat template: the statements and expressions of the Jinja subset
/// wpack renders. Literals are their own type so the tree holds no runtime values (a
/// namespace is a reference) and stays Sendable.
enum TemplateLiteral: Sendable {
    case none, bool(Bool), integer(Int), float(Double), string(String)
}

indirect enum TemplateExpr: Sendable {
    case literal(TemplateLiteral)
    case name(String)
    case list([TemplateExpr])
    case dict([(TemplateExpr, TemplateExpr)])
    case attribute(TemplateExpr, String)
    case index(TemplateExpr, TemplateExpr)
    case slice(TemplateExpr, start: TemplateExpr?, stop: TemplateExpr?, step: TemplateExpr?)
    case call(TemplateExpr, TemplateArguments)
    case filter(TemplateExpr, name: String, TemplateArguments)
    case test(TemplateExpr, name: String, TemplateArguments, negated: Bool)
    case negate(TemplateExpr)
    case not(TemplateExpr)
    /// Arithmetic, comparison, membership and "~" concatenation.
    case binary(String, TemplateExpr, TemplateExpr)
    case and(TemplateExpr, TemplateExpr)
    case or(TemplateExpr, TemplateExpr)
    case conditional(then: TemplateExpr, condition: TemplateExpr, otherwise: TemplateExpr?)
}

struct TemplateArguments: Sendable {
    var positional: [TemplateExpr] = []
    var keyword: [(String, TemplateExpr)] = []
}

indirect enum TemplateNode: Sendable {
    case text(String)
    case output(TemplateExpr, line: Int)
    case forLoop(targets: [String], iterable: TemplateExpr, filter: TemplateExpr?, body: [TemplateNode], otherwise: [TemplateNode], line: Int)
    case ifChain([(TemplateExpr, [TemplateNode])], otherwise: [TemplateNode], line: Int)
    /// `set name = value` or `set namespace.attribute = value`.
    case set(name: String, attribute: String?, TemplateExpr, line: Int)
    /// `set name %}...{% endset`: the body's text.
    case setBlock(name: String, body: [TemplateNode], line: Int)
    case breakLoop(line: Int)
    case continueLoop(line: Int)
}
