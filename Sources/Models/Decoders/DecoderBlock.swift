import LazyTensor
import WeightStore

/// One pre-norm decoder layer: x + attention(norm(x)), then h + mlp(norm(h)); each residual
/// sum is the epilogue of the projection before it. LLaMA's layers use RMSNorm and SwiGLU,
/// GPT-2's LayerNorm and a GELU feed-forward block.
public struct DecoderBlock: Sendable {
    public let attentionNorm: DecoderNorm
    public let attention: MultiHeadAttention
    public let mlpNorm: DecoderNorm
    public let mlp: DecoderFeedForward

    init(store: WeightStore, index: Int, config c: DecoderConfig, rotary: RotaryEmbedding?) throws {
        let n = c.names.layer(index)
        let loader = DecoderLinearLoader(store: store, config: c)
        attentionNorm = try DecoderNorm(store: store, prefix: n.attentionNorm, config: c)
        mlpNorm = try DecoderNorm(store: store, prefix: n.mlpNorm, config: c)
        let width = c.heads * c.headDim, kvWidth = c.kvHeads * c.headDim
        let q: Linear, k: Linear, v: Linear
        if let fused = n.fusedQKV {
            let qkv = try loader.linear(fused, in: c.hiddenSize, out: width + 2 * kvWidth, bias: c.attentionBias)
            (q, k, v) = (qkv.rows(0..<width), qkv.rows(width..<(width + kvWidth)), qkv.rows((width + kvWidth)..<(width + 2 * kvWidth)))
        } else {
            q = try loader.linear(n.query!, in: c.hiddenSize, out: width, bias: c.attentionBias)
            k = try loader.linear(n.key!, in: c.hiddenSize, out: kvWidth, bias: c.attentionBias)
            v = try loader.linear(n.value!, in: c.hiddenSize, out: kvWidth, bias: c.attentionBias)
        }
        let o = try loader.linear(n.attentionOutput, in: width, out: c.hiddenSize, bias: c.outputBias)
        attention = MultiHeadAttention(query: q, key: k, value: v, output: o, heads: c.heads, kvHeads: c.kvHeads,
                                       rotary: rotary, causal: true)
        let up = try loader.linear(n.up, in: c.hiddenSize, out: c.intermediateSize, bias: c.mlpBias)
        let down = try loader.linear(n.down, in: c.intermediateSize, out: c.hiddenSize, bias: c.mlpBias)
        if let gate = n.gate {
            mlp = .gated(GatedMLP(gate: try loader.linear(gate, in: c.hiddenSize, out: c.intermediateSize, bias: c.mlpBias), up: up, down: down))
        } else {
            mlp = .gelu(up: up, down: down, approximate: c.tanhGELU ? .tanh : .none)
        }
    }

    func callAsFunction(_ x: Tensor, cache: KVCache, placement: KVCache.Placement, rotation: RotaryEmbedding.Rotation?) -> Tensor {
        let h = x + attention.attend(attentionNorm(x), cache: cache, placement: placement, rotation: rotation)
        return h + mlp(mlpNorm(h))
    }
}

/// The norm before each sublayer and at the end of the stack.
public enum DecoderNorm: Sendable {
    case rms(RMSNorm)
    case layer(LayerNorm)

    init(store: WeightStore, prefix: String, config c: DecoderConfig) throws {
        if c.architecture == .gpt2 {
            self = .layer(try LayerNorm(store: store, prefix: prefix, size: c.hiddenSize, eps: c.normEps))
        } else {
            self = .rms(try RMSNorm(store: store, prefix: prefix, size: c.hiddenSize, eps: c.normEps))
        }
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case let .rms(n): n(x)
        case let .layer(n): n(x)
        }
    }
}

/// The feed-forward block: LLaMA's SwiGLU, or GPT-2's down(gelu(up(x))).
public enum DecoderFeedForward: Sendable {
    case gated(GatedMLP)
    case gelu(up: Linear, down: Linear, approximate: Tensor.GELUApproximation)

    func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case let .gated(m): m(x)
        case let .gelu(up, down, approximate): down(up(x).gelu(approximate: approximate))
        }
    }
}

/// Reads a decoder's projections in either layout: transformers' Conv1D [in, out] for GPT-2
/// (used through a transposed view), [out, in] everywhere else. A bias is required where the
/// config says there is one and refused where it says there is none, so that a stored tensor
/// is never silently used or ignored against what the reference does.
struct DecoderLinearLoader {
    let store: WeightStore
    let config: DecoderConfig

    func linear(_ prefix: String, in inFeatures: Int, out outFeatures: Int, bias: Bool) throws -> Linear {
        if !bias, store.info(prefix + ".bias") != nil {
            throw ModelError.badConfig("\(prefix).bias is stored but the configuration says this layer has no bias")
        }
        if config.layout == .huggingFace && config.architecture == .gpt2 {
            let w = try store.weight(prefix + ".weight", coded: true)
            guard w.shape == [inFeatures, outFeatures] else {
                throw ModelError.wrongShape(name: prefix + ".weight", expected: [inFeatures, outFeatures], actual: w.shape)
            }
            let b = bias ? try store.weight(prefix + ".bias", shape: [outFeatures]) : nil
            return Linear(weight: w.transposed(), bias: b)
        }
        return try Linear(store: store, prefix: prefix, inFeatures: inFeatures, outFeatures: outFeatures, requireBias: bias)
    }
}

extension Linear {
    /// The layer of some of the outputs: a view of those weight rows and bias values.
    func rows(_ range: Range<Int>) -> Linear {
        Linear(weight: weight.sliced(axis: 0, range: range), bias: bias?.sliced(axis: 0, range: range))
    }
}
