import Foundation
import LazyTensor
import WeightStore

/// A feed-forward stack of layers (small CNNs and MLPs), described by a JSON layer list kept in
/// the .wpk's metadata under `model.sequential` (`wpack pack --layers FILE.json` puts it there):
///
///     {"input": [1, 8, 8], "layers": [
///        {"op": "conv2d", "weight": "conv1.weight", "bias": "conv1.bias", "padding": [1, 1]},
///        {"op": "relu"}, {"op": "maxPool2d", "kernel": [2, 2]}, {"op": "flatten"},
///        {"op": "linear", "weight": "fc.weight", "bias": "fc.bias"}]}
///
/// Ops: conv2d (stride, padding, dilation, groups), linear, relu, gelu, tanh, sigmoid, silu,
/// maxPool2d / avgPool2d (kernel, stride, padding), flatten, softmax / logSoftmax (axis),
/// layerNorm (weight, bias, eps), dropout (nothing at inference). Weights are views into the
/// store; every layer is checked against its weights when the model is loaded.
public struct SequentialModel: Sendable {
    public static let metadataKey = "model.sequential"

    enum Layer: Sendable {
        case conv2d(weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int)
        case linear(Linear)
        case activation(String)
        case pool(max: Bool, kernel: (Int, Int), stride: (Int, Int)?, padding: (Int, Int))
        case flatten
        case softmax(axis: Int, log: Bool)
        case layerNorm(weight: Tensor, bias: Tensor, eps: Float)
    }

    let layers: [Layer]
    /// Shape of one input sample (without the batch axis), when the layer list gives it.
    public let inputShape: [Int]?
    public let store: WeightStore

    public init(store: WeightStore) throws {
        guard let text = store.metadata[Self.metadataKey] else {
            throw ModelError.notAModel(kind: "sequential model", reason: "no '\(Self.metadataKey)' layer list in its metadata (pack with --layers)")
        }
        try self.init(store: store, layerList: text)
    }

    /// The keys each op reads; any other key is refused, so a misspelt "strides" is an error
    /// rather than a layer run with the default.
    static let keys: [String: Set<String>] = [
        "conv2d": ["weight", "bias", "stride", "padding", "dilation", "groups"],
        "linear": ["weight", "bias"],
        "maxPool2d": ["kernel", "stride", "padding"], "avgPool2d": ["kernel", "stride", "padding"],
        "softmax": ["axis"], "logSoftmax": ["axis"],
        "layerNorm": ["weight", "bias", "eps"],
        "relu": [], "gelu": [], "tanh": [], "sigmoid": [], "silu": [], "dropout": ["p"], "identity": [], "flatten": [],
    ]

    public init(store: WeightStore, layerList text: String) throws {
        let object: JSONValue
        do { object = try JSONValue.parse(text) } catch { throw ModelError.badConfig("the layer list is not JSON (\(error))") }
        guard object.pairs != nil, let list = object["layers"]?.array else {
            throw ModelError.badConfig("the layer list is not a JSON object with a \"layers\" array")
        }
        self.store = store
        if let input = object["input"] {
            guard let dims = input.array?.compactMap(\.exactInt), dims.count == input.array?.count, dims.allSatisfy({ $0 > 0 }),
                  dims.count <= 7 else {
                throw ModelError.badConfig("the layer list's \"input\" must be a list of up to 7 positive integers")
            }
            inputShape = dims
        } else {
            inputShape = nil
        }
        layers = try list.enumerated().map { i, spec in try Self.layer(i, spec, store: store) }
    }

    private static func layer(_ i: Int, _ spec: JSONValue, store: WeightStore) throws -> Layer {
        func bad(_ reason: String) -> ModelError { .badConfig("layer \(i): \(reason)") }
        guard let fields = spec.pairs, let op = spec["op"]?.string else { throw bad("not an object with an \"op\"") }
        guard let allowed = keys[op] else { throw bad("unknown op '\(op)'") }
        if let key = spec.duplicateKey { throw bad("'\(key)' given twice") }
        if let unknown = fields.first(where: { $0.0 != "op" && !allowed.contains($0.0) }) {
            throw bad("\(op) takes no '\(unknown.0)' (it reads \(allowed.sorted().joined(separator: ", ")))")
        }
        /// A number or two numbers, each at least `minimum`.
        func pair(_ key: String, _ fallback: (Int, Int), minimum: Int) throws -> (Int, Int) {
            guard let v = spec[key] else { return fallback }
            let values: [Int]
            if let n = v.exactInt { values = [n, n] } else if let a = v.array, a.count == 2, let x = a[0].exactInt, let y = a[1].exactInt {
                values = [x, y]
            } else { throw bad("'\(key)' must be an integer or two integers") }
            guard values.allSatisfy({ $0 >= minimum && $0 <= 1 << 20 }) else {
                throw bad("'\(key)' \(values) must be at least \(minimum) and at most \(1 << 20)")
            }
            return (values[0], values[1])
        }
        func name(_ key: String) throws -> String {
            guard let n = spec[key]?.string else { throw bad("needs a '\(key)' tensor name") }
            return n
        }
        func optionalName(_ key: String) throws -> String? {
            guard let v = spec[key] else { return nil }
            guard let n = v.string else { throw bad("'\(key)' must be a tensor name") }
            return n
        }
        switch op {
        case "conv2d":
            let weightName = try name("weight")
            let w = try store.weight(weightName)
            guard w.rank == 4, w.shape.allSatisfy({ $0 > 0 }) else {
                throw ModelError.wrongShape(name: weightName, expected: [-1, -1, -1, -1], actual: w.shape)
            }
            let b = try optionalName("bias").map { try store.weight($0, shape: [w.shape[0]]) }
            guard let groups = spec["groups"].map({ $0.exactInt }) ?? 1, groups >= 1 else {
                throw bad("'groups' must be a positive integer")
            }
            guard w.shape[0] % groups == 0 else { throw bad("groups \(groups) must divide the \(w.shape[0]) output channels") }
            return .conv2d(weight: w, bias: b, stride: try pair("stride", (1, 1), minimum: 1),
                           padding: try pair("padding", (0, 0), minimum: 0),
                           dilation: try pair("dilation", (1, 1), minimum: 1), groups: groups)
        case "linear":
            let weightName = try name("weight")
            let w = try store.weight(weightName, coded: true)
            guard w.rank == 2 else { throw ModelError.wrongShape(name: weightName, expected: [-1, -1], actual: w.shape) }
            let b = try optionalName("bias").map { try store.weight($0, shape: [w.shape[0]]) }
            return .linear(Linear(weight: w, bias: b))
        case "relu", "gelu", "tanh", "sigmoid", "silu":
            return .activation(op)
        case "dropout", "identity":
            return .activation("identity")
        case "maxPool2d", "avgPool2d":
            let kernel = try pair("kernel", (2, 2), minimum: 1)
            let padding = try pair("padding", (0, 0), minimum: 0)
            // PyTorch's rule: a window must hold at least one real element.
            guard padding.0 <= kernel.0 / 2, padding.1 <= kernel.1 / 2 else {
                throw bad("padding \(padding) must be at most half the kernel \(kernel)")
            }
            return .pool(max: op == "maxPool2d", kernel: kernel,
                         stride: spec["stride"] == nil ? nil : try pair("stride", kernel, minimum: 1), padding: padding)
        case "flatten":
            return .flatten
        case "softmax", "logSoftmax":
            guard let axis = spec["axis"].map({ $0.exactInt }) ?? -1 else { throw bad("'axis' must be an integer") }
            return .softmax(axis: axis, log: op == "logSoftmax")
        default: // layerNorm
            let weightName = try name("weight")
            let w = try store.weight(weightName)
            let b = try store.weight(try name("bias"), shape: w.shape)
            guard let eps = spec["eps"].map({ $0.double }) ?? 1e-5, eps >= 0, eps.isFinite else { throw bad("'eps' must be a non-negative number") }
            return .layerNorm(weight: w, bias: b, eps: Float(eps))
        }
    }

    /// Runs the stack on a batch (lazily; materialise the result to compute it). Shapes are
    /// checked layer by layer, so a wrong input gets an error, not a trap.
    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        if let inputShape, Array(input.shape.dropFirst()) != inputShape {
            throw ModelError.badInput("samples of shape \(Array(input.shape.dropFirst())), the model takes \(inputShape) (input shape \(input.shape))")
        }
        var x = input
        for (i, layer) in layers.enumerated() {
            switch layer {
            case let .conv2d(w, b, stride, padding, dilation, groups):
                guard x.rank == 4, x.shape[1] == w.shape[1] * groups else {
                    throw ModelError.badInput("layer \(i) (conv2d) needs [N, \(w.shape[1] * groups), H, W], got \(x.shape)")
                }
                let h = x.shape[2] + 2 * padding.0 - dilation.0 * (w.shape[2] - 1) - 1
                let wd = x.shape[3] + 2 * padding.1 - dilation.1 * (w.shape[3] - 1) - 1
                guard h >= 0, wd >= 0 else { throw ModelError.badInput("layer \(i) (conv2d): input \(x.shape) is smaller than the kernel") }
                guard x.shape[0] > 0, x.shape[1] > 0 else { throw ModelError.badInput("layer \(i) (conv2d): empty input \(x.shape)") }
                x = conv2d(x, w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups)
            case let .linear(l):
                guard x.rank >= 1, x.shape.last == l.inFeatures else {
                    throw ModelError.badInput("layer \(i) (linear) needs [..., \(l.inFeatures)], got \(x.shape)")
                }
                x = l(x)
            case let .activation(name):
                switch name {
                case "relu": x = x.relu()
                case "gelu": x = x.gelu()
                case "tanh": x = x.tanh()
                case "sigmoid": x = x.sigmoid()
                case "silu": x = x.silu()
                default: break
                }
            case let .pool(isMax, kernel, stride, padding):
                guard x.rank == 4, x.shape[2] + 2 * padding.0 >= kernel.0, x.shape[3] + 2 * padding.1 >= kernel.1 else {
                    throw ModelError.badInput("layer \(i) (pooling) needs [N, C, H, W] at least the window, got \(x.shape)")
                }
                x = isMax ? x.maxPool2d(kernel: kernel, stride: stride, padding: padding) : x.avgPool2d(kernel: kernel, stride: stride, padding: padding)
            case .flatten:
                x = x.rank <= 2 ? x : x.flattened(from: 1)
            case let .softmax(axis, log):
                guard axis >= -x.rank, axis < x.rank else {
                    throw ModelError.badInput("layer \(i) (softmax) has axis \(axis), the input \(x.shape) has \(x.rank) axes")
                }
                x = log ? x.logSoftmax(axis: axis) : x.softmax(axis: axis)
            case let .layerNorm(w, b, eps):
                guard w.rank == 1, x.shape.last == w.scalarCount else { throw ModelError.badInput("layer \(i) (layerNorm) needs [..., \(w.scalarCount)], got \(x.shape)") }
                x = x.layerNorm(axis: -1, eps: eps, weight: w, bias: b)
            }
        }
        return x
    }
}
