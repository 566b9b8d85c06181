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
        let path = folder.file("gpt2-\(UUID().uuidString).wpk")
        try pack([Fixtures.path("decoders/gpt2-gguf/tiny-gpt2.gguf")], to: path)
        return try TextDecoder(store: WeightStore(path: path))
    }

    @Test func idsEqualLlamaCppOnTheCorpus() throws {
        let tokenizer = try Self.decoder().tokenizer
        let rows = Fixtures.json("decoders/gpt2-gguf/tokenizer_ids.json")["rows"]!.array!
        #expect(rows.count > 2000)
        #expect(Set(rows.flatMap { $0["ids"]!.ints }).count >= 200)
        var mismatches: [String] = []
        for row in rows where tokenizer.encode(row["text"]!.string!).ids != row["ids"]!.ints {
            mismatches.append(row["text"]!.string!.debugDescription)
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(rows.count) differ, first: \(mismatches.prefix(3))")
    }

    /// GPT-2's graph from llama.cpp's names and layout gives transformers' logits on the same
    /// weights, through the caches, for every prompt of the folder's reference.
    @Test func logitsEqualTheFolderInTransformers() throws {
        let model = try Self.decoder()
        #expect(model.config.layout == .gguf && model.config.architecture == .gpt2 && model.config.tanhGELU)
        #expect(model.config.layers == 2 && model.config.heads == 4 && model.maxPositions == 128)
        let reference = Fixtures.json("decoders/gpt2/expected.json")
        let steps = reference["steps"]!.int!, width = model.config.vocabularySize
        for prompt in reference["prompts"]!.array! {
            let ids = prompt["ids"]!.ints
            let rows = try ArrayFile.readNpy(path: Fixtures.path("decoders/gpt2/" + prompt["logits"]!.string!)).scalars
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
