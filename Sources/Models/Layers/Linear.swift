import LazyTensor
import WeightStore

/// y = x · Wᵀ + b with PyTorch's weight layout [out, in]. The weight is read by the BLAS in
/// place (a transposed view), and the bias and whatever follows run as the GEMM's epilogue.
public struct Linear: Sendable {
    public let weight: Tensor
    public let bias: Tensor?

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    /// `requireBias`: the architecture has a bias here, so a missing one is an error rather than
    /// a layer silently run without it.
    public init(store: WeightStore, prefix: String, inFeatures: Int? = nil, outFeatures: Int? = nil, requireBias: Bool = false) throws {
        let w = try store.weight(prefix + ".weight")
        guard w.rank == 2 else { throw ModelError.wrongShape(name: prefix + ".weight", expected: [outFeatures ?? -1, inFeatures ?? -1], actual: w.shape) }
        if let inFeatures, w.shape[1] != inFeatures { throw ModelError.wrongShape(name: prefix + ".weight", expected: [outFeatures ?? w.shape[0], inFeatures], actual: w.shape) }
        if let outFeatures, w.shape[0] != outFeatures { throw ModelError.wrongShape(name: prefix + ".weight", expected: [outFeatures, w.shape[1]], actual: w.shape) }
        weight = w
        if store.info(prefix + ".bias") == nil {
            if requireBias { throw ModelError.missingTensor(prefix + ".bias") }
            bias = nil
        } else {
            bias = try store.weight(prefix + ".bias", shape: [w.shape[0]])
        }
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = matmul(x, weight.transposed())
        return bias.map { y + $0 } ?? y
    }
}

/// Layer normalisation over the last axis with learned scale and shift.
public struct LayerNorm: Sendable {
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public init(store: WeightStore, prefix: String, size: Int, eps: Float) throws {
        weight = try store.weight(prefix + ".weight", shape: [size])
        bias = try store.weight(prefix + ".bias", shape: [size])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm(axis: -1, eps: eps, weight: weight, bias: bias) }
}

/// A lookup table of rows (token or position embeddings).
public struct Embedding: Sendable {
    public let table: Tensor

    public init(store: WeightStore, name: String, rows: Int? = nil, width: Int? = nil) throws {
        let t = try store.weight(name)
        guard t.rank == 2, rows.map({ t.shape[0] == $0 }) ?? true, width.map({ t.shape[1] == $0 }) ?? true else {
            throw ModelError.wrongShape(name: name, expected: [rows ?? -1, width ?? -1], actual: t.shape)
        }
        table = t
    }

    public func callAsFunction(_ ids: [Int], shape: [Int]) -> Tensor { table.gatherRows(ids, indexShape: shape) }
}
