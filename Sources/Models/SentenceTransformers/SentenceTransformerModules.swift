import WeightStore

/// What a sentence-transformers folder says it computes: modules.json's modules in order, with
/// each module's options, and the prompts of config_sentence_transformers.json. A module or
/// option wpack does not implement is refused here, by name.
public struct SentenceTransformerModules: Sendable {
    public enum Module: Sendable {
        case transformer(maxSequenceLength: Int?, lowercase: Bool)
        case pooling(Pooling)
        case dense(path: String, config: String)
        case normalize
    }

    public var modules: [Module]
    public var prompts: [String: String]
    public var defaultPromptName: String?
    /// False when the folder has no modules.json (a plain transformers folder):
    /// sentence-transformers then builds Transformer + mean Pooling, and so do we.
    public var fromModulesJSON: Bool

    public init(files file: (String) -> String?) throws {
        prompts = [:]
        if let text = file("config_sentence_transformers.json") {
            let j: JSONValue
            do { j = try JSONValue.parse(text) } catch { throw ModelError.badConfig("config_sentence_transformers.json: \(error)") }
            for (name, value) in j["prompts"]?.pairs ?? [] {
                guard let p = value.string else { throw ModelError.badConfig("prompt '\(name)' is not a string") }
                prompts[name] = p
            }
            defaultPromptName = j["default_prompt_name"]?.string
        }
        guard let text = file("modules.json") else {
            fromModulesJSON = false
            modules = [try Self.transformer(path: "", file), .pooling(Pooling(modes: [.mean]))]
            return
        }
        fromModulesJSON = true
        let j: JSONValue
        do { j = try JSONValue.parse(text) } catch { throw ModelError.badConfig("modules.json: \(error)") }
        guard let items = j.array else { throw ModelError.badConfig("modules.json is not a list") }
        modules = []
        for item in items {
            guard let type = item["type"]?.string else { throw ModelError.badConfig("modules.json: a module without a type") }
            let path = item["path"]?.string ?? ""
            let kind = type.split(separator: ".").last.map(String.init) ?? type
            switch kind {
            case "Transformer":
                modules.append(try Self.transformer(path: path, file))
            case "Pooling":
                guard let config = file(Self.join(path, "config.json")) else {
                    throw ModelError.badConfig("modules.json names a Pooling module at '\(path)' whose config.json is not inside")
                }
                modules.append(.pooling(try Pooling(configJSON: config)))
            case "Dense":
                guard let config = file(Self.join(path, "config.json")) else {
                    throw ModelError.badConfig("modules.json names a Dense module at '\(path)' whose config.json is not inside")
                }
                modules.append(.dense(path: path, config: config))
            case "Normalize":
                modules.append(.normalize)
            default:
                throw ModelError.badConfig("modules.json: module '\(type)' is not implemented by wpack (it runs Transformer, Pooling, Dense, Normalize)")
            }
        }
        guard case .transformer? = modules.first else {
            throw ModelError.badConfig("modules.json must start with a Transformer module")
        }
        guard modules.contains(where: { if case .pooling = $0 { true } else { false } }) else {
            throw ModelError.badConfig("modules.json has no Pooling module: token-level outputs are not implemented by wpack")
        }
        if modules.dropFirst().contains(where: { if case .transformer = $0 { true } else { false } }) {
            throw ModelError.badConfig("modules.json has a second Transformer module")
        }
    }

    static func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : path + "/" + name }

    static func transformer(path: String, _ file: (String) -> String?) throws -> Module {
        guard path.isEmpty else {
            throw ModelError.badConfig("modules.json puts the Transformer in '\(path)'; wpack reads it from the folder's root only")
        }
        var maxLength: Int?, lower = false
        if let text = file("sentence_bert_config.json") {
            let j: JSONValue
            do { j = try JSONValue.parse(text) } catch { throw ModelError.badConfig("sentence_bert_config.json: \(error)") }
            maxLength = j["max_seq_length"]?.int
            lower = j["do_lower_case"]?.bool ?? false
            if let m = maxLength, m < 1 { throw ModelError.badConfig("sentence_bert_config.json: max_seq_length \(m) is not positive") }
        }
        return .transformer(maxSequenceLength: maxLength, lowercase: lower)
    }
}
