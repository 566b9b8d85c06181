import Foundation
import LazyTensor
import Testing
import WeightStore
@testable import Models

/// A llama-architecture GGUF file with a SentencePiece ("llama") vocabulary: the tiny mistral
/// folder's weights and tokenizer written as llama.cpp's converter writes them (query and key
/// rows permuted, linear rope scaling in the metadata), by
/// tools/fixtures/make_hf_decoder_fixtures.py. The token ids are llama.cpp's own
/// (llama-cpp-python, special tokens parsed); the logits are transformers' on the folder,
/// since the file holds the same weights.
@Suite struct SentencePieceGGUFTests {
    static let folder = TemporaryFolder()

    static func decoder() throws -> TextDecoder {
        try DecoderReference.ggufDecoder("decoders/llama-spm-gguf/tiny-llama-spm.gguf", in: folder)
    }

    @Test func idsEqualLlamaCppOnTheCorpus() throws {
        let tokenizer = try Self.decoder().tokenizer
        #expect(tokenizer.model.name == "SentencePiece BPE")
        DecoderReference.expectLlamaCppIds(tokenizer, "decoders/llama-spm-gguf/tokenizer_ids.json")
        // Characters outside the vocabulary come out as byte tokens and decode back.
        for text in ["The capital of France is Paris.", "Über 42 €", "漢字 and 🙂"] {
            let ids = tokenizer.encode(text, addSpecialTokens: false).ids
            #expect(tokenizer.decode(ids) == text)
        }
        #expect(tokenizer.encode("漢", addSpecialTokens: false).ids.count >= 3)
    }

    /// The GGUF layout (interleaved RoPE on permuted rows, llama.cpp's names, rope scaling from
    /// the metadata) gives transformers' logits on the same weights, through the caches.
    @Test func logitsEqualTheFolderInTransformers() throws {
        let model = try Self.decoder()
        #expect(model.config.layout == .gguf && model.config.ropeScaling == .linear(factor: 2) && model.config.kvHeads == 1)
        #expect(model.chatTemplate != nil && model.bosToken == "<s>" && model.endOfSequenceIDs.contains(2))
        let reference = Fixtures.json("decoders/mistral/expected.json")
        for prompt in reference["prompts"]!.array! {
            let ids = prompt["ids"]!.ints
            if prompt["kind"]!.string! == "plain" {
                #expect(TextGenerator(model: model).prompt(prompt["text"]!.string!).ids == ids)
            }
            try DecoderReference.expectLogits(model, ids: ids, logits: "decoders/mistral/" + prompt["logits"]!.string!,
                                              steps: reference["steps"]!.int!, forced: prompt["generated"]!.ints,
                                              label: prompt["text"]!.string!.debugDescription)
        }
    }
}
