/// Why a chat template cannot be used or rendered. One line each; `line` is the template's
/// line (from 1) of the tag at fault.
public enum ChatTemplateError: Error, Equatable, Sendable, CustomStringConvertible {
    case syntax(line: Int, String)
    /// A Jinja construct wpack's renderer does not implement: refused rather than rendered
    /// differently from the model's reference.
    case unsupported(line: Int, String)
    case render(line: Int, String)
    /// The template's own raise_exception(...), such as "Conversation roles must alternate".
    case raised(String)

    public var description: String {
        switch self {
        case let .syntax(line, m): "chat template line \(line): \(m)"
        case let .unsupported(line, m): "chat template line \(line): \(m) is not supported by wpack's template renderer"
        case let .render(line, m): "chat template line \(line): \(m)"
        case let .raised(m): "chat template: \(m)"
        }
    }
}
