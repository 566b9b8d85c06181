/// Where each layout keeps a decoder's weights: llama.cpp's names in a GGUF file,
/// transformers' in a model folder. Every name is a prefix before ".weight" / ".bias".
struct DecoderWeightNames {
    let layout: DecoderWeightLayout
    let architecture: DecoderArchitecture
    /// GPT-2's "transformer." or nothing.
    let prefix: String

    struct Layer {
        let attentionNorm, mlpNorm: String
        /// q, k, v apart, or (GPT-2) one fused projection in `fusedQKV`.
        let query, key, value, fusedQKV: String?
        let attentionOutput: String
        /// SwiGLU's gate (nil for GPT-2), up and down projections.
        let gate: String?
        let up, down: String
    }

    var tokenEmbedding: String {
        switch (layout, architecture) {
        case (.gguf, _): "token_embd.weight"
        case (.huggingFace, .gpt2): prefix + "wte.weight"
        case (.huggingFace, _): "model.embed_tokens.weight"
        }
    }

    /// GPT-2's learned positions.
    var positionEmbedding: String { layout == .gguf ? "position_embd.weight" : prefix + "wpe.weight" }

    var finalNorm: String {
        switch (layout, architecture) {
        case (.gguf, _): "output_norm"
        case (.huggingFace, .gpt2): prefix + "ln_f"
        case (.huggingFace, _): "model.norm"
        }
    }

    var outputHead: String { layout == .gguf ? "output" : "lm_head" }

    func layer(_ i: Int) -> Layer {
        switch (layout, architecture) {
        case (.gguf, .gpt2):
            // llama.cpp's converter writes c_attn as one [3·width, width] projection (Conv1D
            // transposed to a Linear's layout) and the feed-forward's c_fc / c_proj as up / down.
            let p = "blk.\(i)."
            return Layer(attentionNorm: p + "attn_norm", mlpNorm: p + "ffn_norm", query: nil, key: nil, value: nil,
                         fusedQKV: p + "attn_qkv", attentionOutput: p + "attn_output", gate: nil,
                         up: p + "ffn_up", down: p + "ffn_down")
        case (.gguf, _):
            let p = "blk.\(i)."
            return Layer(attentionNorm: p + "attn_norm", mlpNorm: p + "ffn_norm", query: p + "attn_q", key: p + "attn_k",
                         value: p + "attn_v", fusedQKV: nil, attentionOutput: p + "attn_output", gate: p + "ffn_gate",
                         up: p + "ffn_up", down: p + "ffn_down")
        case (.huggingFace, .gpt2):
            let p = "\(prefix)h.\(i)."
            return Layer(attentionNorm: p + "ln_1", mlpNorm: p + "ln_2", query: nil, key: nil, value: nil,
                         fusedQKV: p + "attn.c_attn", attentionOutput: p + "attn.c_proj", gate: nil,
                         up: p + "mlp.c_fc", down: p + "mlp.c_proj")
        case (.huggingFace, _):
            let p = "model.layers.\(i)."
            return Layer(attentionNorm: p + "input_layernorm", mlpNorm: p + "post_attention_layernorm",
                         query: p + "self_attn.q_proj", key: p + "self_attn.k_proj", value: p + "self_attn.v_proj", fusedQKV: nil,
                         attentionOutput: p + "self_attn.o_proj", gate: p + "mlp.gate_proj", up: p + "mlp.up_proj",
                         down: p + "mlp.down_proj")
        }
    }
}
