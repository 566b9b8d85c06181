import LazyTensor
import WeightStore

/// y = x · Wᵀ + b with PyTorch's weight layout [out, in]. The weight is read by the GEMM in
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
        let w = try store.weight(prefix + ".weight", coded: true)
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
