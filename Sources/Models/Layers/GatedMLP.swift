import LazyTensor
import WeightStore

/// LLaMA's feed-forward block, SwiGLU: down(silu(gate(x)) · up(x)). The gate's activation and
/// the product fuse into the down projection's input.
public struct GatedMLP: Sendable {
    public let gate: Linear
    public let up: Linear
    public let down: Linear

    public init(gate: Linear, up: Linear, down: Linear) {
        self.gate = gate
        self.up = up
        self.down = down
    }

    /// `names`: the three projections under `prefix` (transformers': gate_proj, up_proj, down_proj).
    public init(store: WeightStore, prefix: String, width: Int, hidden: Int,
                names: (gate: String, up: String, down: String) = ("gate_proj", "up_proj", "down_proj")) throws {
        gate = try Linear(store: store, prefix: prefix + names.gate, inFeatures: width, outFeatures: hidden)
        up = try Linear(store: store, prefix: prefix + names.up, inFeatures: width, outFeatures: hidden)
        down = try Linear(store: store, prefix: prefix + names.down, inFeatures: hidden, outFeatures: width)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { down(gate(x).silu() * up(x)) }
}
