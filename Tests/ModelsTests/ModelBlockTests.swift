import Foundation
import LazyTensor
import Models
import Testing
import WeightStore

/// Five model families written with the public API only (layers, ops, KVCache), against
/// float64 NumPy references made by tools/fixtures/make_model_blocks.py.
@Suite(.serialized) struct ModelBlockTests {
    static func load(_ name: String) -> JSONValue { Fixtures.json("model-blocks/\(name).json") }

    static func tensor(_ v: JSONValue?) -> Tensor {
        guard let shape = v?["shape"]?.array, let values = v?["values"]?.array else { fatalError("fixture tensor") }
        return Tensor(shape: shape.map { $0.exactInt ?? 0 }, scalars: values.map { Float($0.double ?? .nan) })
    }

    static func weights(_ doc: JSONValue) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: (doc["weights"]?.pairs ?? []).map { ($0.0, tensor($0.1)) })
    }

    /// Largest difference relative to the reference's largest magnitude.
    static func error(_ got: Tensor, _ expected: Tensor) -> Float {
        let (a, b) = (got.scalars, expected.scalars)
        guard a.count == b.count else { return .infinity }
        let scale = Swift.max(1, b.map(Swift.abs).max() ?? 1)
        return zip(a, b).map { Swift.abs($0 - $1) }.max()! / scale
    }

    // MARK: GPT-2

    struct GPT2 {
        struct Block {
            let ln1: LayerNorm, attention: Linear, projection: Linear, ln2: LayerNorm, fc: Linear, out: Linear
        }
        let wte: Tensor, wpe: Embedding, blocks: [Block], lnF: LayerNorm, heads: Int

        init(_ w: [String: Tensor], layers: Int, heads: Int) {
            // GPT-2's Conv1D stores [in, out]: Linear wants [out, in], so it gets the transpose,
            // a view (and reads the original in place).
            func conv1d(_ p: String) -> Linear { Linear(weight: w[p + ".weight"]!.transposed(), bias: w[p + ".bias"]) }
            func norm(_ p: String) -> LayerNorm { LayerNorm(weight: w[p + ".weight"]!, bias: w[p + ".bias"], eps: 1e-5) }
            blocks = (0..<layers).map { l in
                Block(ln1: norm("h.\(l).ln_1"), attention: conv1d("h.\(l).attn.c_attn"), projection: conv1d("h.\(l).attn.c_proj"),
                      ln2: norm("h.\(l).ln_2"), fc: conv1d("h.\(l).mlp.c_fc"), out: conv1d("h.\(l).mlp.c_proj"))
            }
            wte = w["wte"]!
            wpe = Embedding(table: w["wpe"]!)
            lnF = norm("ln_f")
            self.heads = heads
        }

        /// Logits of the last position for `ids` appended after what the caches hold.
        func callAsFunction(_ ids: [Int], caches: [KVCache]) -> Tensor {
            let (t, start, width) = (ids.count, caches[0].length, wte.shape[1])
            var x = Embedding(table: wte)(Tensor(shape: [1, t], integers: ids))
                + wpe(Tensor(shape: [1, t], integers: Array(start..<(start + t))))
            let d = width / heads
            for (block, cache) in zip(blocks, caches) {
                let qkv = block.attention(block.ln1(x)).split(sizes: [width, width, width], axis: 2)
                let (q, k, v) = (qkv[0], qkv[1], qkv[2])
                func split(_ y: Tensor) -> Tensor { y.reshaped([1, t, heads, d]).permuted([0, 2, 1, 3]) }
                let (keys, values) = cache.append(keys: split(k), values: split(v))
                let context = scaledDotProductAttention(split(q), keys, values, causal: true)
                x = x + block.projection(context.permuted([0, 2, 1, 3]).reshaped([1, t, width]))
                x = x + block.out(block.fc(block.ln2(x)).gelu(approximate: .tanh))
            }
            let last = x[0..., (t - 1)..., 0...]
            return matmul(lnF(last), wte.transposed())
        }
    }

    @Test func gpt2GreedyDecodingThroughAKVCache() throws {
        let doc = Self.load("gpt2-decoder")
        let layers = doc["config"]?["layers"]?.exactInt ?? 0, heads = doc["config"]?["heads"]?.exactInt ?? 0
        let width = doc["config"]?["width"]?.exactInt ?? 0
        let model = GPT2(Self.weights(doc), layers: layers, heads: heads)
        guard let p = doc["prompt"]?.array, let g = doc["generated"]?.array else { Issue.record("fixture"); return }
        let prompt = p.map { $0.exactInt! }, expected = g.map { $0.exactInt! }
        let caches = (0..<layers).map { _ in KVCache(heads: heads, capacity: prompt.count + expected.count, headDim: width / heads) }
        var logits = model(prompt, caches: caches)
        #expect(Self.error(logits.reshaped([-1]), Self.tensor(doc["first_logits"])) < 1e-4)
        var generated: [Int] = []
        var steps: [Stats] = []
        for _ in 0..<expected.count {
            let next = logits.argmax(axis: -1).integers[0]
            generated.append(next)
            let (l, stats) = Stats.measure { () -> Tensor in
                let l = model([next], caches: caches)
                _ = l.materialized()
                return l
            }
            logits = l
            steps.append(stats)
        }
        // The last step's logits are those of one token past the fixture's last; compare the
        // tokens, which is what decoding is for.
        #expect(generated == expected)
        // Every step runs the same kernels and copies only its new rows: per layer one key row
        // and one value row into the cache, and the two embedding rows it looks up.
        let perStep = steps.dropFirst()
        #expect(Set(perStep.map(\.kernels)).count == 1, "\(steps.map(\.kernels))")
        let cacheRows = layers * 2 * width * 4
        #expect(perStep.allSatisfy { $0.copiedByReason[.cacheWrite] == cacheRows }, "\(steps.map(\.copiedByReason))")
        #expect(perStep.allSatisfy { $0.copiedByReason[.gather] == 2 * width * 4 })
        #expect(perStep.allSatisfy { $0.copiedByReason[.userRequest] == 16 })  // the token id and its position
        #expect(perStep.allSatisfy { $0.bytesCopied == cacheRows + 2 * width * 4 + 16 })
        // One plan for every decode step: built by the first, reused by all later ones.
        #expect(steps[0].plans >= 1 && perStep.allSatisfy { $0.plans == 0 }, "\(steps.map(\.plans))")
    }

    // MARK: LLaMA

    @Test func llamaBlock() throws {
        let doc = Self.load("llama-block")
        let w = Self.weights(doc)
        let c = doc["config"]!
        let (heads, kvHeads) = (c["heads"]!.exactInt!, c["kv_heads"]!.exactInt!)
        func linear(_ name: String) -> Linear { Linear(weight: w[name + ".weight"]!, bias: nil) }
        let rotary = try RotaryEmbedding(headDim: c["head_dim"]!.exactInt!, maxPositions: 64, theta: c["rope_theta"]!.double!)
        let attention = MultiHeadAttention(query: linear("self_attn.q_proj"), key: linear("self_attn.k_proj"),
                                           value: linear("self_attn.v_proj"), output: linear("self_attn.o_proj"),
                                           heads: heads, kvHeads: kvHeads, rotary: rotary, causal: true)
        let norm1 = RMSNorm(weight: w["input_layernorm.weight"]!, eps: 1e-6)
        let norm2 = RMSNorm(weight: w["post_attention_layernorm.weight"]!, eps: 1e-6)
        let (gate, up, down) = (linear("mlp.gate_proj"), linear("mlp.up_proj"), linear("mlp.down_proj"))
        let x = Self.tensor(doc["input"])
        let h = x + attention(norm1(x))
        let m = norm2(h)
        let y = h + down(gate(m).silu() * up(m))
        #expect(Self.error(y.materialized(), Self.tensor(doc["output"])) < 2e-5)
    }

    /// Interleaved RoPE for attention gives each head's rotated features in halves order: the
    /// same values as the interleaved rotation, permuted, so q·k and attention do not change;
    /// one kernel, nothing copied.
    @Test func interleavedRotationForAttentionIsAPermutation() throws {
        let rotary = try RotaryEmbedding(headDim: 8, maxPositions: 16, pairing: .interleaved)
        let r = rotary.rotation(start: 3, count: 5)
        let q = Tensor.randn(shape: [1, 2, 5, 8], seed: 7).materialized(), k = Tensor.randn(shape: [1, 2, 5, 8], seed: 8).materialized()
        let plain = rotary(q, r).materialized().scalars
        let (fast, stats) = Stats.measure { rotary.rotatedForAttention(q, r).materialized() }
        // The rotation itself, and the two lookups of the cosine and sine rows: what those copy
        // (5 positions x 4 angles x 4 bytes each) is all that is copied.
        #expect(stats.kernels == 3 && stats.bytesCopied == 2 * 5 * 4 * 4, "\(stats)")
        let order = [0, 2, 4, 6, 1, 3, 5, 7]
        for row in 0..<10 {
            #expect((0..<8).map { fast.scalars[row * 8 + $0] } == order.map { plain[row * 8 + $0] }, "row \(row)")
        }
        let slow = scaledDotProductAttention(rotary(q, r), rotary(k, r), k, causal: true).materialized().scalars
        let quick = scaledDotProductAttention(fast, rotary.rotatedForAttention(k, r), k, causal: true).materialized().scalars
        #expect(zip(slow, quick).map { abs($0 - $1) }.max()! < 1e-6)
        // Halves pairing already is in that order.
        let halves = try RotaryEmbedding(headDim: 8, maxPositions: 16)
        #expect(halves.rotatedForAttention(q, r).materialized().scalars == halves(q, r).materialized().scalars)
    }

    // MARK: ResNet

    /// PyTorch's BatchNorm2d parameters under `prefix`.
    static func batchNorm(_ w: [String: Tensor], _ p: String) -> BatchNorm2d {
        BatchNorm2d(runningMean: w[p + ".running_mean"]!, runningVariance: w[p + ".running_var"]!, weight: w[p + ".weight"],
                    bias: w[p + ".bias"])
    }

    @Test func resnetBasicBlockWithBatchNorm() throws {
        let doc = Self.load("resnet-basic-block")
        let w = Self.weights(doc)
        func bn(_ p: String) -> BatchNorm2d { Self.batchNorm(w, p) }
        let conv1 = Conv2d(weight: w["conv1.weight"]!, padding: (1, 1)), conv2 = Conv2d(weight: w["conv2.weight"]!, padding: (1, 1))
        let x = Self.tensor(doc["input"]), expected = Self.tensor(doc["output"])
        // Unfolded: each norm runs as its convolution's epilogue, the residual and ReLU too.
        let y = (bn("bn2")(conv2(bn("bn1")(conv1(x)).relu())) + x).relu()
        #expect(y.plan().kernelNames == ["conv2d + epilogue", "conv2d + epilogue"])
        #expect(Self.error(y.materialized(), expected) < 1e-5)
        // Folded into the weights once: the same numbers, each epilogue now only the bias.
        let (f1, f2) = (conv1.folding(bn("bn1")), conv2.folding(bn("bn2")))
        let folded = (f2(f1(x).relu()) + x).relu()
        #expect(Self.error(folded.materialized(), expected) < 1e-5)
    }

    // MARK: MobileNet

    @Test func mobilenetDepthwiseBlockWithHardswish() throws {
        let doc = Self.load("mobilenet-block")
        let w = Self.weights(doc)
        func bn(_ p: String) -> BatchNorm2d { Self.batchNorm(w, p) }
        let expand = Conv2d(weight: w["expand.weight"]!)
        let depthwise = Conv2d(weight: w["depthwise.weight"]!, padding: (1, 1), groups: w["depthwise.weight"]!.shape[0])
        let project = Conv2d(weight: w["project.weight"]!)
        let x = Self.tensor(doc["input"])
        let y = bn("bn3")(project(bn("bn2")(depthwise(bn("bn1")(expand(x)).hardswish())).hardswish())) + x
        #expect(y.plan().kernelCount == 3)
        #expect(Self.error(y.materialized(), Self.tensor(doc["output"])) < 1e-5)
    }

    // MARK: ViT

    @Test func vitPatchEmbeddingClsTokenAndOneBlock() throws {
        let doc = Self.load("vit-block")
        let w = Self.weights(doc)
        let c = doc["config"]!
        let (width, heads, patch) = (c["width"]!.exactInt!, c["heads"]!.exactInt!, c["patch"]!.exactInt!)
        let image = Self.tensor(doc["input"])
        let b = image.shape[0]
        let embed = Conv2d(weight: w["patch.weight"]!, bias: w["patch.bias"], stride: (patch, patch))
        let patches = embed(image).flattened(from: 2).transposed()  // [B, N, E]
        let cls = w["cls"]!.expanded(to: [b, 1, width])
        var x = Tensor.concatenate([cls, patches], axis: 1) + w["pos"]!
        // The fused qkv projection, split into three layers by views of its rows.
        let qkvW = w["qkv.weight"]!.split(sizes: [width, width, width], axis: 0)
        let qkvB = w["qkv.bias"]!.split(sizes: [width, width, width], axis: 0)
        let attention = MultiHeadAttention(query: Linear(weight: qkvW[0], bias: qkvB[0]), key: Linear(weight: qkvW[1], bias: qkvB[1]),
                                           value: Linear(weight: qkvW[2], bias: qkvB[2]),
                                           output: Linear(weight: w["proj.weight"]!, bias: w["proj.bias"]), heads: heads)
        func norm(_ p: String) -> LayerNorm { LayerNorm(weight: w[p + ".weight"]!, bias: w[p + ".bias"], eps: 1e-6) }
        let (fc1, fc2) = (Linear(weight: w["fc1.weight"]!, bias: w["fc1.bias"]), Linear(weight: w["fc2.weight"]!, bias: w["fc2.bias"]))
        x = x + attention(norm("norm1")(x))
        x = x + fc2(fc1(norm("norm2")(x)).gelu())
        let y = norm("norm")(x)[0..., 0]
        #expect(y.shape == [b, width])
        #expect(Self.error(y.materialized(), Self.tensor(doc["output"])) < 2e-5)
    }
}

/// The same blocks built from a .wpk by prefix, PyTorch's and transformers' names.
@Suite struct LayersFromStoreTests {
    static func store(_ fixture: String, prefix: String, in folder: TemporaryFolder) throws -> WeightStore {
        let path = folder.file("\(fixture).wpk")
        let writer = try WeightStoreWriter(path: path)
        for (name, t) in ModelBlockTests.weights(ModelBlockTests.load(fixture)).sorted(by: { $0.key < $1.key }) {
            try writer.addTensor(name: prefix + name, dtype: .float32, shape: t.shape, source: .tensor(t))
        }
        try writer.finish()
        return try WeightStore(path: path)
    }

    @Test func llamaBlockFromAStore() throws {
        let folder = TemporaryFolder()
        let doc = ModelBlockTests.load("llama-block")
        let store = try Self.store("llama-block", prefix: "model.layers.0.", in: folder)
        let p = "model.layers.0."
        let rotary = try RotaryEmbedding(headDim: 8, maxPositions: 32)
        let attention = try MultiHeadAttention(store: store, prefix: p + "self_attn", heads: 4, kvHeads: 2, rotary: rotary)
        let norm1 = try RMSNorm(store: store, prefix: p + "input_layernorm", size: 32, eps: 1e-6)
        let norm2 = try RMSNorm(store: store, prefix: p + "post_attention_layernorm", size: 32, eps: 1e-6)
        let gate = try Linear(store: store, prefix: p + "mlp.gate_proj"), up = try Linear(store: store, prefix: p + "mlp.up_proj")
        let down = try Linear(store: store, prefix: p + "mlp.down_proj")
        let x = ModelBlockTests.tensor(doc["input"])
        let h = x + attention(norm1(x))
        let y = h + down(gate(norm2(h)).silu() * up(norm2(h)))
        #expect(ModelBlockTests.error(y.materialized(), ModelBlockTests.tensor(doc["output"])) < 2e-5)
        // The weights are views of the mapped file.
        #expect(attention.query.weight.sharesStorage(with: down.weight))
        // A head count that does not divide the projection is a clear error.
        #expect(throws: ModelError.self) { try MultiHeadAttention(store: store, prefix: p + "self_attn", heads: 3) }
    }

    @Test func resnetBlockFromAStore() throws {
        let folder = TemporaryFolder()
        let doc = ModelBlockTests.load("resnet-basic-block")
        let store = try Self.store("resnet-basic-block", prefix: "layer1.0.", in: folder)
        let conv1 = try Conv2d(store: store, prefix: "layer1.0.conv1", padding: (1, 1))
        let conv2 = try Conv2d(store: store, prefix: "layer1.0.conv2", padding: (1, 1))
        let bn1 = try BatchNorm2d(store: store, prefix: "layer1.0.bn1", channels: 8)
        let bn2 = try BatchNorm2d(store: store, prefix: "layer1.0.bn2", channels: 8)
        let x = ModelBlockTests.tensor(doc["input"])
        let y = (bn2(conv2(bn1(conv1(x)).relu())) + x).relu()
        #expect(ModelBlockTests.error(y.materialized(), ModelBlockTests.tensor(doc["output"])) < 1e-5)
        #expect(throws: ModelError.self) { try BatchNorm2d(store: store, prefix: "layer1.0.bn1", channels: 9) }
    }
}
