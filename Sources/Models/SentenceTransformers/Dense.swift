import LazyTensor
import WeightStore

/// sentence-transformers' Dense module: a linear layer and its activation, applied to the
/// pooled vector. Its weights travel in the .wpk under the module's folder name
/// ("2_Dense/linear.weight").
public struct Dense: Sendable {
    public enum Activation: String, Sendable, CaseIterable {
        case identity = "torch.nn.modules.linear.Identity"
        case tanh = "torch.nn.modules.activation.Tanh"
        case relu = "torch.nn.modules.activation.ReLU"
        case gelu = "torch.nn.modules.activation.GELU"
        case sigmoid = "torch.nn.modules.activation.Sigmoid"
        case silu = "torch.nn.modules.activation.SiLU"

        /// The names sentence-transformers writes (the class's full name, also the short form
        /// torch.nn.Tanh).
        init?(name: String) {
            if let a = Activation(rawValue: name) { self = a; return }
            let short = name.split(separator: ".").last.map(String.init) ?? name
            guard let a = Activation.allCases.first(where: { $0.rawValue.hasSuffix("." + short) }), name.hasPrefix("torch.") else { return nil }
            self = a
        }

        func apply(_ x: Tensor) -> Tensor {
            switch self {
            case .identity: x
            case .tanh: x.tanh()
            case .relu: x.relu()
            case .gelu: x.gelu()
            case .sigmoid: x.sigmoid()
            case .silu: x.silu()
            }
        }
    }

    public let linear: Linear
    public let activation: Activation

    init(store: WeightStore, path: String, configJSON text: String) throws {
        let j: JSONValue
        do { j = try JSONValue.parse(text) } catch { throw ModelError.badConfig("\(path)/config.json: \(error)") }
        let name = j["activation_function"]?.string ?? Activation.tanh.rawValue
        guard let activation = Activation(name: name) else {
            throw ModelError.badConfig("Dense activation '\(name)' is not implemented by wpack (it runs \(Activation.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let hasBias = j["bias"]?.bool ?? true
        linear = try Linear(store: store, prefix: path + "/linear", inFeatures: j["in_features"]?.int, outFeatures: j["out_features"]?.int,
                            requireBias: hasBias)
        self.activation = activation
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { activation.apply(linear(x)) }
}
