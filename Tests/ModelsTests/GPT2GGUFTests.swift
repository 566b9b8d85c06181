import Foundation
import LazyTensor
import Testing
import WeightStore
@testable import Models

/// A gpt2-architecture GGUF file: the tiny gpt2 folder's weights and tokenizer written as
/// llama.cpp's converter writes them (Conv1D weights transposed to [out, in], the fused
/// attn_qkv, the tied head written out as output.weight, the "gpt-2" pre-tokenizer), by
/// tools/fixtures/make_hf_decoder_fixtures.py. The token ids are llama.cpp's own
/// (llama-cpp-python, special tokens parsed); the logits are transformers' on the folder,
/// since the file holds the same weights.
@Suite struct GPT2GGUFTests {
    static let folder = TemporaryFolder()

    static func decoder() throws -> TextDecoder {
        try DecoderReference.ggufDecoder("decoders/gpt2-gguf/tiny-gpt2.gguf", in: folder)
    }

    @Test func idsEqualLlamaCppOnTheCorpus() throws {
        DecoderReference.expectLlamaCppIds(try Self.decoder().tokenizer, "decoders/gpt2-gguf/tokenizer_ids.json")
    }

    /// GPT-2's graph from llama.cpp's names and layout gives transformers' logits on the same
    /// weights, through the caches, for every prompt of the folder's reference.
    @Test func logitsEqualTheFolderInTransformers() throws {
        let model = try Self.decoder()
        #expect(model.config.layout == .gguf && model.config.architecture == .gpt2 && model.config.tanhGELU)
        #expect(model.config.layers == 2 && model.config.heads == 4 && model.maxPositions == 128)
        let reference = Fixtures.json("decoders/gpt2/expected.json")
        for prompt in reference["prompts"]!.array! {
            try DecoderReference.expectLogits(model, ids: prompt["ids"]!.ints, logits: "decoders/gpt2/" + prompt["logits"]!.string!,
                                              steps: reference["steps"]!.int!, forced: prompt["generated"]!.ints,
                                              label: prompt["text"]!.string!.debugDescription)
        }
    }
}
