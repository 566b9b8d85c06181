import Foundation
import LazyTensor
import Testing
import WeightStore
@testable import Models

/// The real SmolLM2-135M-Instruct GGUF (Q4_1 and Q8_0 blocks, run in place) against
/// transformers loading the same file and dequantizing it to float32
/// (tools/fixtures/make_decoder_fixtures.py wrote Tests/Fixtures/smollm2). Skipped, visibly,
/// where the model is absent (tools/fetch-smollm2 fetches it).
enum SmolLM2Store {
    static let gguf = Fixtures.repository.appendingPathComponent(".cache/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static var available: Bool { FileManager.default.fileExists(atPath: gguf) }
    static let folder = TemporaryFolder()
    static let model: TextDecoder? = {
        guard available else { return nil }
        let path = folder.file("smollm2.wpk")
        try! pack([gguf], to: path)
        return try! TextDecoder(store: WeightStore(path: path))
    }()
}

@Suite(.enabled(if: SmolLM2Store.available, "SmolLM2 GGUF absent: run tools/fetch-smollm2"))
struct SmolLM2Tests {
    @Test func tokenizerGivesTransformersIdsOnTheCorpus() throws {
        let tokenizer = try #require(SmolLM2Store.model).tokenizer
        let expected = Fixtures.json("smollm2/tokenizer_ids.json")
        let rows = expected["rows"]!.array!
        #expect(rows.count == 2100)
        var mismatches: [String] = []
        for row in rows where tokenizer.encode(row["text"]!.string!).ids != row["ids"]!.ints {
            mismatches.append(row["text"]!.string!.debugDescription)
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(rows.count) differ, first: \(mismatches.prefix(5))")
        for row in expected["decoded"]!.array! {
            #expect(tokenizer.decode(row["ids"]!.ints) == row["text"]!.string!)
        }
    }

    @Test func greedyContinuationsAndLogitsEqualTransformers() throws {
        let model = try #require(SmolLM2Store.model)
        let reference = Fixtures.json("smollm2/prompts.json")
        let steps = reference["steps"]!.int!
        for prompt in reference["prompts"]!.array! {
            let text = prompt["text"]!.string!
            let ids = model.tokenizer.encode(text).ids
            #expect(ids == prompt["ids"]!.ints, "\(text.debugDescription)")
            let session = model.makeSession(capacity: ids.count + steps)
            var logits = try session.logits(after: ids)
            let files = prompt["logits"]?.array?.map { $0.string! } ?? []
            if let first = files.first { try expectClose(logits, first) }
            var generated: [Int] = []
            for step in 0..<steps {
                let next = logits.indices.max { logits[$0] < logits[$1] }!
                generated.append(next)
                if step < steps - 1 { logits = try session.logits(after: [next]) }
            }
            #expect(generated == prompt["generated"]!.ints, "\(text.debugDescription): \(model.tokenizer.decode(generated, skipSpecialTokens: false).debugDescription)")
            if files.count > 1 { try expectClose(logits, files[1]) }
        }
    }

    /// Within 1e-3 of the reference's range (max - min) at every position of the vocabulary.
    func expectClose(_ got: [Float], _ file: String) throws {
        let expected = try ArrayFile.readNpy(path: Fixtures.path("smollm2/" + file)).scalars
        #expect(got.count == expected.count)
        let range = expected.max()! - expected.min()!
        let worst = zip(got, expected).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-3 * range, "\(file): worst difference \(worst) for a range of \(range)")
    }
}
