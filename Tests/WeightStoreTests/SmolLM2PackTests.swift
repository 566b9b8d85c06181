import Foundation
import LazyTensor
import Testing
@testable import WeightStore

/// The real SmolLM2-135M-Instruct GGUF (Q4_1; fetched by tools/fetch-smollm2 into
/// .cache/smollm2), packed: blocks kept, metadata whole. Skipped, visibly, where it is absent.
enum SmolLM2 {
    static let gguf = Fixtures.repository.appendingPathComponent(".cache/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static var available: Bool { FileManager.default.fileExists(atPath: gguf) }
}

@Suite(.enabled(if: SmolLM2.available, "SmolLM2 GGUF absent: run tools/fetch-smollm2"))
struct SmolLM2PackTests {
    @Test func packsWithItsBlocksAndTokenizer() throws {
        let folder = TemporaryFolder()
        let out = folder.file("smollm2.wpk")
        try InterchangeTests.pack([SmolLM2.gguf], to: out)
        let store = try WeightStore(path: out, verify: .eager)
        #expect(store.infos.count == 272)
        let counts = Dictionary(grouping: store.infos, by: { $0.dtype.map { "\($0)" } ?? "?" }).mapValues(\.count)
        #expect(counts == ["q4_1": 210, "q8_0": 1, "float32": 61], "\(counts)")
        #expect(store.info("token_embd.weight")?.shape == [49152, 576])
        #expect(store.info("blk.29.attn_k.weight")?.shape == [192, 576])
        #expect(store.info("blk.0.ffn_down.weight")?.shape == [576, 1536])
        #expect(store.metadataValue("general.architecture") == .string("llama"))
        #expect(store.metadataValue("llama.attention.head_count_kv") == .int(3))
        #expect(store.metadataValue("tokenizer.ggml.eos_token_id") == .int(2))

        let tokens = try JSONValue.parse(store.metadata["tokenizer.ggml.tokens"] ?? "")
        #expect(tokens.array?.count == 49152 && tokens.array?[1].string == "<|im_start|>")
        let merges = try JSONValue.parse(store.metadata["tokenizer.ggml.merges"] ?? "")
        #expect(merges.array?.count == 48900 && merges.array?.first?.string == "Ġ t")
        #expect(store.metadata["tokenizer.chat_template"]?.contains("<|im_start|>") == true)

        // The quantized matrices are views of the mapping, as a product reads them.
        let view = try store.codedTensor("blk.0.attn_q.weight")
        let raw = try store.withRawBytes("blk.0.attn_q.weight") { UInt(bitPattern: $0.baseAddress) }
        #expect(UInt(bitPattern: view.storage.baseAddress) == raw)
        #expect(view.shape == [576, 576] && view.dtype == .q4_1)
    }
}
