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

    public init(store: WeightStore, layerList text: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let list = object["layers"] as? [[String: Any]] else {
            throw ModelError.badConfig("the layer list is not a JSON object with a \"layers\" array")
        }
        self.store = store
        inputShape = object["input"] as? [Int]
        func pair(_ spec: [String: Any], _ key: String, _ fallback: (Int, Int)) throws -> (Int, Int) {
            guard let v = spec[key] else { return fallback }
            if let n = v as? Int { return (n, n) }
            guard let a = v as? [Int], a.count == 2 else { throw ModelError.badConfig("'\(key)' must be a number or two numbers") }
            return (a[0], a[1])
        }
        func name(_ spec: [String: Any], _ key: String, _ i: Int) throws -> String {
            guard let n = spec[key] as? String else { throw ModelError.badConfig("layer \(i) needs a '\(key)' tensor name") }
            return n
        }
        layers = try list.enumerated().map { i, spec -> Layer in
            guard let op = spec["op"] as? String else { throw ModelError.badConfig("layer \(i) has no \"op\"") }
            switch op {
            case "conv2d":
                let w = try store.weight(try name(spec, "weight", i))
                guard w.rank == 4 else { throw ModelError.wrongShape(name: try name(spec, "weight", i), expected: [-1, -1, -1, -1], actual: w.shape) }
                let b = try (spec["bias"] as? String).map { try store.weight($0, shape: [w.shape[0]]) }
                let groups = spec["groups"] as? Int ?? 1
                guard groups >= 1, w.shape[0] % groups == 0 else { throw ModelError.badConfig("layer \(i): bad groups \(groups)") }
                return .conv2d(weight: w, bias: b, stride: try pair(spec, "stride", (1, 1)), padding: try pair(spec, "padding", (0, 0)),
                               dilation: try pair(spec, "dilation", (1, 1)), groups: groups)
            case "linear":
                return .linear(try Linear(store: store, prefix: String(try name(spec, "weight", i).dropLast(".weight".count)))
                    .checkedBias(spec["bias"] as? String, store: store))
            case "relu", "gelu", "tanh", "sigmoid", "silu":
                return .activation(op)
            case "dropout", "identity":
                return .activation("identity")
            case "maxPool2d", "avgPool2d":
                let kernel = try pair(spec, "kernel", (2, 2))
                return .pool(max: op == "maxPool2d", kernel: kernel, stride: spec["stride"] == nil ? nil : try pair(spec, "stride", kernel),
                             padding: try pair(spec, "padding", (0, 0)))
            case "flatten":
                return .flatten
            case "softmax", "logSoftmax":
                return .softmax(axis: spec["axis"] as? Int ?? -1, log: op == "logSoftmax")
            case "layerNorm":
                let w = try store.weight(try name(spec, "weight", i))
                let b = try store.weight(try name(spec, "bias", i), shape: w.shape)
                return .layerNorm(weight: w, bias: b, eps: Float(spec["eps"] as? Double ?? 1e-5))
            default:
                throw ModelError.badConfig("layer \(i): unknown op '\(op)'")
            }
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
                x = log ? x.logSoftmax(axis: axis) : x.softmax(axis: axis)
            case let .layerNorm(w, b, eps):
                guard x.shape.last == w.scalarCount else { throw ModelError.badInput("layer \(i) (layerNorm) needs [..., \(w.scalarCount)], got \(x.shape)") }
                x = x.layerNorm(axis: -1, eps: eps, weight: w, bias: b)
            }
        }
        return x
    }
}

extension Linear {
    /// The bias named in a layer list, or none when the list names none.
    func checkedBias(_ name: String?, store: WeightStore) throws -> Linear {
        guard let name else { return Linear(weight: weight, bias: nil) }
        return Linear(weight: weight, bias: try store.weight(name, shape: [outFeatures]))
    }
}
