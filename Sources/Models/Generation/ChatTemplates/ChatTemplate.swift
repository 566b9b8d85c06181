import WeightStore

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A model's chat template (the Jinja text in its GGUF's tokenizer.chat_template or its
/// tokenizer_config.json), parsed once and rendered as transformers' apply_chat_template
/// renders it: trim_blocks and lstrip_blocks on, `messages`, `add_generation_prompt`,
/// `bos_token` and `eos_token` set, raise_exception and strftime_now available.
///
/// Supported: text, `{{ }}`, comments, `-`/`+` whitespace control; `for` (with `else`, an
/// `if` filter, unpacking, `loop.index/index0/first/last/length/revindex/previtem/nextitem`,
/// `break`/`continue`), `if`/`elif`/`else`, `set` (also of a namespace's attribute, and as a
/// block); literals, lists, dicts, attributes, subscripts, slices, calls, `~ + - * / // %`,
/// comparisons, `in`/`not in`, `and`/`or`/`not`, `x if c else y`, `is [not]` tests; the
/// filters trim, length/count, upper, lower, capitalize, title, string, safe, int, float, abs,
/// first, last, join, default/d, items, list, reverse, replace, tojson, select/reject,
/// selectattr/rejectattr and map; string, dict and global functions listed in
/// `TemplateBuiltins`. Anything else (macros, `call`, `include`, other filters) is refused
/// with the construct's name when the template is parsed or rendered.
public struct ChatTemplate: Sendable {
    public let source: String
    let nodes: [TemplateNode]

    public init(_ source: String) throws {
        self.source = source
        nodes = try TemplateParser.parse(source)
    }

    public func render(messages: [ChatMessage], addGenerationPrompt: Bool = true,
                       bosToken: String? = nil, eosToken: String? = nil) throws -> String {
        let list = JSONValue.array(messages.map { .object([("role", .string($0.role)), ("content", .string($0.content))]) })
        var context: [(String, JSONValue)] = [("messages", list), ("add_generation_prompt", .bool(addGenerationPrompt))]
        if let bosToken { context.append(("bos_token", .string(bosToken))) }
        if let eosToken { context.append(("eos_token", .string(eosToken))) }
        return try render(context: context)
    }

    /// Renders with any variables (messages with tool calls, `tools`, `documents` ...), as
    /// JSON values.
    public func render(context: [(String, JSONValue)]) throws -> String {
        var globals: [String: TemplateValue] = [:]
        for (k, v) in context { globals[k] = TemplateValue(v) }
        var renderer = TemplateRenderer(globals: globals)
        try renderer.render(nodes)
        return renderer.output
    }
}
