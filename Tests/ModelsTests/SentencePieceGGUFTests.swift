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
        let path = folder.file("spm-\(UUID().uuidString).wpk")
        try pack([Fixtures.path("decoders/llama-spm-gguf/tiny-llama-spm.gguf")], to: path)
        return try TextDecoder(store: WeightStore(path: path))
    }

    @Test func idsEqualLlamaCppOnTheCorpus() throws {
        let tokenizer = try Self.decoder().tokenizer
        #expect(tokenizer.model.name == "SentencePiece BPE")
        let rows = Fixtures.json("decoders/llama-spm-gguf/tokenizer_ids.json")["rows"]!.array!
        #expect(rows.count > 2000)
        var mismatches: [String] = []
        for row in rows where tokenizer.encode(row["text"]!.string!).ids != row["ids"]!.ints {
            mismatches.append(row["text"]!.string!.debugDescription)
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(rows.count) differ, first: \(mismatches.prefix(3))")
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
        let steps = reference["steps"]!.int!, width = model.config.vocabularySize
        for prompt in reference["prompts"]!.array! {
            let ids = prompt["ids"]!.ints
            if prompt["kind"]!.string! == "plain" {
                #expect(TextGenerator(model: model).prompt(prompt["text"]!.string!).ids == ids)
            }
            let rows = try ArrayFile.readNpy(path: Fixtures.path("decoders/mistral/" + prompt["logits"]!.string!)).scalars
            let session = model.makeSession(capacity: ids.count + steps)
            var logits = try session.logits(after: ids)
            for step in 0...steps {
                let row = Array(rows[(step * width)..<((step + 1) * width)])
                let range = row.max()! - row.min()!
                let worst = zip(logits, row).map { abs($0 - $1) }.max()!
                #expect(worst <= 1e-4 * range, "step \(step): worst \(worst) of a range of \(range)")
                if step == steps { break }
                logits = try session.logits(after: [prompt["generated"]!.ints[step]])
            }
        }
    }
}
