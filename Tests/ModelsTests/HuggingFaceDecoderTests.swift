import Foundation
import LazyTensor
import Testing
import WeightStore
@testable import Models

/// Tiny random decoders in Hugging Face folders, one per family (Tests/Fixtures/decoders,
/// written by tools/fixtures/make_hf_decoder_fixtures.py with transformers): the prompt ids,
/// the chat prompt rendered from the folder's own template, and the logits after the prompt and
/// after each of 12 greedy steps, which wpack computes through its KV caches and transformers
/// computed by full forward passes without one.
@Suite struct HuggingFaceDecoderTests {
    static let folder = TemporaryFolder()

    static func decoder(_ name: String) throws -> TextDecoder {
        let path = folder.file("\(name)-\(UUID().uuidString).wpk")
        try pack([Fixtures.path("decoders/" + name)], to: path)
        return try TextDecoder(store: WeightStore(path: path))
    }

    @Test(arguments: ["llama", "mistral", "qwen2", "gpt2"])
    func logitsAndGreedyStepsEqualTransformers(_ name: String) throws {
        let model = try Self.decoder(name)
        let generator = TextGenerator(model: model)
        let reference = Fixtures.json("decoders/\(name)/expected.json")
        let steps = reference["steps"]!.int!
        var chats = 0
        for prompt in reference["prompts"]!.array! {
            let text = prompt["text"]!.string!
            let ids: [Int]
            if let messages = prompt["messages"]?.array {
                let chat = try generator.chatPrompt(messages.map { ChatMessage(role: $0["role"]!.string!, content: $0["content"]!.string!) })
                #expect(chat.text == text)
                ids = chat.ids
                chats += 1
            } else {
                ids = generator.prompt(text).ids
            }
            #expect(ids == prompt["ids"]!.ints, "\(name) \(text.debugDescription)")
            let generated = try DecoderReference.expectLogits(model, ids: ids, logits: "decoders/\(name)/" + prompt["logits"]!.string!,
                                                              steps: steps, label: "\(name) \(text.debugDescription)")
            #expect(generated == prompt["generated"]!.ints, "\(name) \(text.debugDescription)")
        }
        #expect(chats == (name == "gpt2" ? 0 : 1))
    }

    /// A session's decode steps replay one graph (see Replay): the logits equal a step graph
    /// built anew at every position, bit for bit, and every step runs the same kernels; only
    /// the first plans (or finds the cached plan: other tests share the cache), later ones
    /// neither plan nor build a graph. Rotary (llama) and learned (gpt2) positions.
    @Test(arguments: ["llama", "gpt2"])
    func decodeStepsReplayOneGraph(_ name: String) throws {
        let model = try Self.decoder(name)
        let prompt = [1, 5, 9, 2]
        let replayed = model.makeSession(capacity: 32), fresh = model.makeSession(capacity: 32)
        _ = try replayed.logits(after: prompt)
        var next = try fresh.logits(after: prompt)
        var kernels: Set<Int> = [], plans = 0
        for _ in 0..<10 {
            let id = next.indices.max { next[$0] < next[$1] }!
            let start = fresh.length
            let (got, stats) = try Stats.measure { try replayed.logits(after: [id]) }
            next = try Tensor.withErrors {
                model.forward(Tensor(shape: [1, 1], integers: [id]), positions: Tensor(shape: [1], integers: [start]),
                              caches: fresh.caches, placement: .now).materialized().scalars
            }
            #expect(got == next, "\(name) step \(start)")
            kernels.insert(stats.kernels)
            plans += stats.plans
        }
        #expect(replayed.length == fresh.length && replayed.length == prompt.count + 10)
        #expect(kernels.count == 1 && plans <= 1, "\(name): kernels \(kernels), plans \(plans)")
    }

    @Test func configsAreReadAsTransformersReadsThem() throws {
        let llama = try Self.decoder("llama").config
        #expect(llama.architecture == .llama && llama.layout == .huggingFace && llama.kvHeads == 2 && !llama.tiedEmbeddings)
        #expect(llama.ropeScaling == .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 16))
        let mistral = try Self.decoder("mistral")
        #expect(mistral.config.modelType == "mistral" && mistral.config.architecture == .llama && mistral.config.kvHeads == 1)
        #expect(mistral.config.ropeScaling == .linear(factor: 2))
        #expect(mistral.endOfSequenceIDs == [2] && mistral.bosToken == "<s>")
        let qwen = try Self.decoder("qwen2")
        #expect(qwen.config.attentionBias && !qwen.config.outputBias && qwen.config.tiedEmbeddings)
        // The table has rows past the tokenizer's ids, as real Qwen2 checkpoints do.
        #expect(qwen.config.vocabularySize == qwen.tokenizer.largestID + 1 + 12)
        #expect(qwen.endOfSequenceIDs == Set([0, 2]) && qwen.bosToken == nil)
        let gpt2 = try Self.decoder("gpt2")
        #expect(gpt2.config.architecture == .gpt2 && gpt2.config.tanhGELU && gpt2.config.contextLength == 128)
        #expect(gpt2.chatTemplate == nil)
    }

    /// The llama3 scaling, checked on its own against the formula's three bands: high
    /// frequencies kept, low ones divided by the factor, the band between interpolated.
    @Test func llama3RopeScalingKeepsHighAndDividesLowFrequencies() {
        let scaling = RopeScaling.llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 8192)
        let base = RopeScaling.none.inverseFrequencies(headDim: 128, theta: 500_000)
        let scaled = scaling.inverseFrequencies(headDim: 128, theta: 500_000)
        #expect(scaled[0] == base[0])
        #expect(scaled[63] == base[63] / 8)
        let between = scaled.indices.filter { scaled[$0] != base[$0] && scaled[$0] != base[$0] / 8 }
        #expect(!between.isEmpty && between.allSatisfy { scaled[$0] < base[$0] && scaled[$0] > base[$0] / 8 })
    }

    /// A folder whose config asks for what wpack does not implement is refused by name, at
    /// load and so at pack time.
    @Test func unimplementedConfigurationsAreRefused() throws {
        func refused(_ edit: (inout [String: Any]) -> Void, _ fragment: String) throws {
            let source = Fixtures.path("decoders/llama")
            let copy = Self.folder.file("edited-\(UUID().uuidString)")
            try FileManager.default.copyItem(atPath: source, toPath: copy)
            let configPath = copy + "/config.json"
            var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as! [String: Any]
            edit(&config)
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
            let path = copy + ".wpk"
            try pack([copy], to: path)
            #expect { try TextDecoder(store: WeightStore(path: path)) } throws: { "\($0)".contains(fragment) }
            #expect(ModelSummary(store: try WeightStore(path: path)).problem?.contains(fragment) == true)
        }
        try refused({ $0["hidden_act"] = "gelu" }, "hidden_act 'gelu'")
        try refused({ $0["rope_parameters"] = ["rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0] }, "rope type 'yarn'")
        try refused({ $0["partial_rotary_factor"] = 0.5 }, "partial_rotary_factor")
        try refused({ $0["model_type"] = "phi3" }, "model_type 'phi3'")
        try refused({ $0["tie_word_embeddings"] = true; $0["vocab_size"] = 7 }, "vocabulary size is 7")
        try refused({ $0["attention_bias"] = true }, "self_attn.q_proj.bias")
    }

    @Test func packSummaryNamesTheDecoder() throws {
        let path = Self.folder.file("summary.wpk")
        try pack([Fixtures.path("decoders/qwen2")], to: path)
        let summary = ModelSummary(store: try WeightStore(path: path))
        #expect(summary.problem == nil)
        #expect(summary.runsWith == ["generate", "bench generate"])
        #expect(summary.lines.first?.hasPrefix("decoder: qwen2 (qwen2 graph), 2 layers, hidden 64, 4 heads (2 key/value)") == true, "\(summary.lines)")
    }

    /// Mistral's sliding window caps a session below the context, so no step attends past it.
    @Test func slidingWindowCapsTheSession() throws {
        let copy = Self.folder.file("windowed-\(UUID().uuidString)")
        try FileManager.default.copyItem(atPath: Fixtures.path("decoders/mistral"), toPath: copy)
        let configPath = copy + "/config.json"
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as! [String: Any]
        config["sliding_window"] = 24
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        try pack([copy], to: copy + ".wpk")
        let model = try TextDecoder(store: WeightStore(path: copy + ".wpk"))
        #expect(model.maxPositions == 24 && model.makeSession(capacity: 100).capacity == 24)
        let result = try TextGenerator(model: model).generate(prompt: TextGenerator(model: model).prompt("x"),
                                                              options: GenerationOptions(maxTokens: 100, stopAtEndOfSequence: false))
        // 24 positions run; the token chosen from the last of them is generated but never run.
        #expect(result.stopReason == .contextFull && result.promptTokens + result.ids.count == 25, "\(result.promptTokens) + \(result.ids.count)")
    }
}
