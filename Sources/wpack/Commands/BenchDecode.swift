import ArgumentParser
import Dispatch
import Foundation
import WPack

/// One decode loop of a random LLaMA-style decoder (RMSNorm, RoPE, grouped-query attention,
/// SwiGLU, tied head), step by step, two ways: with a KVCache written in place, and with
/// caches grown by concatenation whose only evaluated result is the logits (the pattern the
/// tensor-API issue measured: its kernels grew with every step). Each step reports its time,
/// kernels, bytes copied, plans built and results recomputed.
struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Time the decode steps of a random decoder: a KVCache against concatenated caches.")

    @Option(help: "Decode steps after the prompt.")
    var steps = 64
    @Option(help: "Prompt tokens (one batched prefill).")
    var prompt = 8
    @Option(help: "Model width.")
    var width = 256
    @Option(help: "Layers.")
    var layers = 4
    @Option(help: "Query heads.")
    var heads = 8
    @Option(name: .customLong("kv-heads"), help: "Key/value heads (grouped-query when fewer than the query heads).")
    var kvHeads = 2
    @Option(help: "Vocabulary size.")
    var vocab = 2048
    @Option(help: "Which loops to run: both, kv-cache or concatenate (one alone, for WPACK_PROFILE).")
    var mode = "both"
    @Flag(help: "Print every step (default: steps 1, 2, 4, 8, ... and the last).")
    var all = false
    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        guard steps > 0, prompt > 0, width > 0, layers > 0, heads > 0, kvHeads > 0, vocab > 1 else {
            throw ValidationError("every size must be positive")
        }
        guard heads % kvHeads == 0, width % heads == 0, (width / heads) % 2 == 0 else {
            throw ValidationError("--heads must divide --width into even head widths, and --kv-heads must divide --heads")
        }
        guard ["both", "kv-cache", "concatenate"].contains(mode) else { throw ValidationError("--mode is both, kv-cache or concatenate") }
    }

    struct Step {
        var milliseconds: Double
        var stats: Stats
        var row: [String: Any] {
            ["ms": milliseconds, "kernels": stats.kernels, "bytes_copied": stats.bytesCopied, "plans": stats.plans,
             "recomputed": stats.recomputed, "bytes_allocated": stats.bytesAllocated]
        }
    }

    func run() throws {
        let model = try Decoder(width: width, layers: layers, heads: heads, kvHeads: kvHeads, vocab: vocab, positions: prompt + steps + 1)
        let promptIDs = (0..<prompt).map { ($0 * 7 + 3) % vocab }
        var results: [String: [Step]] = [:]
        var tokens: [String: [Int]] = [:]
        let modes = mode == "both" ? ["kv_cache", "concatenate"] : [mode == "kv-cache" ? "kv_cache" : "concatenate"]
        for mode in modes {
            Tensor.releaseCaches()
            var run = model.start(cached: mode == "kv_cache", capacity: prompt + steps + 1)
            var next = model.logits(promptIDs, &run).argmax(axis: -1).integers[0]
            var generated: [Int] = []
            var rows: [Step] = []
            for _ in 0..<steps {
                generated.append(next)
                let start = DispatchTime.now().uptimeNanoseconds
                let (id, stats) = Stats.measure { model.logits([next], &run).argmax(axis: -1).integers[0] }
                rows.append(Step(milliseconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6, stats: stats))
                next = id
            }
            results[mode] = rows
            tokens[mode] = generated
        }
        if modes.count == 2, tokens["kv_cache"] != tokens["concatenate"] {
            throw CommandFailure("the two decode loops generated different tokens")
        }
        if json {
            var doc: [String: Any] = ["tokens": tokens[modes[0]]!, "width": width, "layers": layers, "heads": heads, "kv_heads": kvHeads]
            for m in modes { doc[m] = results[m]!.map(\.row) }
            let data = try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("decoder: width \(width), \(layers) layers, \(heads) heads over \(kvHeads) kv heads, vocab \(vocab); "
              + "prompt \(prompt) tokens, then \(steps) steps (same tokens both ways)")
        print("step" + modes.map { " | \($0): ms  kernels    copied  plans  recomputed" }.joined())
        var shown = Set<Int>([1, steps])
        var p = 1
        while p <= steps { shown.insert(p); p *= 2 }
        for i in 0..<steps where all || shown.contains(i + 1) {
            let cells = modes.map { m -> String in
                let s = results[m]![i]
                return String(format: " | %*.3f %8d %9@ %6d %11d", m.count + 4, s.milliseconds, s.stats.kernels,
                              Terminal.formatBytes(s.stats.bytesCopied), s.stats.plans, s.stats.recomputed)
            }
            print(String(format: "%4d", i + 1) + cells.joined())
        }
        for mode in modes {
            let rows = results[mode]!
            let total = rows.reduce(0) { $0 + $1.milliseconds }
            print("\(mode): \(String(format: "%.1f", total)) ms for \(steps) steps, \(rows.reduce(0) { $0 + $1.stats.plans }) plans, "
                  + "\(Terminal.formatBytes(rows.reduce(0) { $0 + $1.stats.bytesCopied })) copied")
        }
    }

    /// The random decoder, written with the public layers.
    struct Decoder {
        struct Block {
            let norm1: RMSNorm, attention: MultiHeadAttention, norm2: RMSNorm, gate: Linear, up: Linear, down: Linear
        }
        let embedding: Tensor
        let blocks: [Block]
        let norm: RMSNorm
        let rotary: RotaryEmbedding
        let heads: Int, kvHeads: Int, headDim: Int

        init(width: Int, layers: Int, heads: Int, kvHeads: Int, vocab: Int, positions: Int) throws {
            let d = width / heads
            var seed: UInt64 = 1
            func weight(_ shape: [Int], scale: Float) -> Tensor {
                seed += 1
                return (Tensor.randn(shape: shape, seed: seed) * scale).materialized()
            }
            func linear(_ out: Int, _ input: Int) -> Linear { Linear(weight: weight([out, input], scale: 1 / Float(input).squareRoot()), bias: nil) }
            let rotary = try RotaryEmbedding(headDim: d, maxPositions: positions)
            var built: [Block] = []
            for _ in 0..<layers {
                built.append(
                Block(norm1: RMSNorm(weight: Tensor.ones(shape: [width])),
                      attention: MultiHeadAttention(query: linear(heads * d, width), key: linear(kvHeads * d, width),
                                                    value: linear(kvHeads * d, width), output: linear(width, heads * d),
                                                    heads: heads, kvHeads: kvHeads, rotary: rotary, causal: true),
                      norm2: RMSNorm(weight: Tensor.ones(shape: [width])), gate: linear(4 * width, width), up: linear(4 * width, width),
                      down: linear(width, 4 * width)))
            }
            let table = weight([vocab, width], scale: 1)
            self.rotary = rotary
            blocks = built
            embedding = table
            norm = RMSNorm(weight: Tensor.ones(shape: [width]))
            (self.heads, self.kvHeads, headDim) = (heads, kvHeads, d)
        }

        /// Per layer: a KVCache, or the keys and values so far as lazily concatenated tensors.
        struct Run {
            var caches: [KVCache]
            var concatenated: [(keys: Tensor, values: Tensor)?]
            var length = 0
        }

        func start(cached: Bool, capacity: Int) -> Run {
            Run(caches: cached ? blocks.map { $0.attention.makeCache(capacity: capacity) } : [],
                concatenated: Array(repeating: nil, count: blocks.count))
        }

        /// Logits of the last position after `ids`.
        func logits(_ ids: [Int], _ run: inout Run) -> Tensor {
            let t = ids.count
            var x = Embedding(table: embedding)(Tensor(shape: [1, t], integers: ids))
            let rotation = rotary.rotation(start: run.length, count: t)  // shared by every layer
            for (i, block) in blocks.enumerated() {
                let h = block.norm1(x)
                if !run.caches.isEmpty {
                    x = x + block.attention(h, cache: run.caches[i], rotation: rotation)
                } else {
                    x = x + concatenatedAttention(block.attention, h, &run.concatenated[i], rotation: rotation)
                }
                let m = block.norm2(x)
                x = x + block.down(block.gate(m).silu() * block.up(m))
            }
            run.length += t
            return matmul(norm(x[0..., (t - 1)..., 0...]), embedding.transposed())
        }

        /// The same attention with keys and values grown by concatenation, never evaluated on
        /// their own.
        func concatenatedAttention(_ a: MultiHeadAttention, _ x: Tensor, _ past: inout (keys: Tensor, values: Tensor)?,
                                   rotation: RotaryEmbedding.Rotation) -> Tensor {
            let t = x.shape[1]
            func split(_ y: Tensor, _ h: Int) -> Tensor { y.reshaped([1, t, h, headDim]).permuted([0, 2, 1, 3]) }
            let q = rotary(split(a.query(x), heads), rotation)
            let k = rotary(split(a.key(x), kvHeads), rotation), v = split(a.value(x), kvHeads)
            let keys = past.map { Tensor.concatenate([$0.keys, k], axis: 2) } ?? k
            let values = past.map { Tensor.concatenate([$0.values, v], axis: 2) } ?? v
            past = (keys, values)
            let context = scaledDotProductAttention(q, keys, values, causal: true)
            return a.output(context.permuted([0, 2, 1, 3]).reshaped([1, t, heads * headDim]))
        }
    }
}
