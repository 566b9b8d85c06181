import LazyTensor
import WeightStore

/// Why a store cannot be used as a model, or an input does not fit it. One line each.
public enum ModelError: Error, Equatable, Sendable, CustomStringConvertible {
    case notAModel(kind: String, reason: String)
    case missingTensor(String)
    case wrongShape(name: String, expected: [Int], actual: [Int])
    case badConfig(String)
    case badInput(String)

    /// One line: control characters from config files are escaped.
    public var description: String { DisplayText.escaped(message, backslash: false) }

    private var message: String {
        switch self {
        case let .notAModel(kind, reason): "this .wpk holds no \(kind): \(reason)"
        case let .missingTensor(name): "the model needs a tensor named '\(name)', which the .wpk does not hold"
        case let .wrongShape(name, expected, actual): "tensor '\(name)' has shape \(actual), the model needs \(expected)"
        case let .badConfig(reason): "model configuration: \(reason)"
        case let .badInput(reason): "input: \(reason)"
        }
    }
}

extension WeightStore {
    /// The text of a model-folder file the .wpk keeps (metadata `file:NAME`), found by the
    /// store's binary search: `metadata` builds a whole dictionary on every access.
    func file(_ name: String) -> String? {
        if case let .string(text)? = metadataValue("file:" + name) { return text }
        return nil
    }

    /// A float tensor the model needs, with its shape checked (a zero-copy view when stored as
    /// uncompressed float32).
    /// `coded`: a matrix product's weight, kept in its stored coding (`codedTensor`).
    func weight(_ name: String, shape: [Int]? = nil, coded: Bool = false) throws -> Tensor {
        guard info(name) != nil else { throw ModelError.missingTensor(name) }
        let t = coded ? try codedTensor(name) : try tensor(name)
        if let shape, t.shape != shape { throw ModelError.wrongShape(name: name, expected: shape, actual: t.shape) }
        return t
    }
}
