import Foundation
import Testing
@testable import Models
import WeightStore

/// Random-initialised small ...ForSequenceClassification models of each family against
/// sentence-transformers' CrossEncoder.predict (tools/fixtures/make_encoder_fixtures.py).
@Suite struct CrossEncoderTests {
    static let families = ["bert", "roberta", "xlm-roberta", "distilbert", "electra", "mpnet"]

    static func model(_ family: String, in folder: TemporaryFolder) throws -> CrossEncoder {
        try pack([Fixtures.path("cross-encoders/\(family)")], to: folder.file("m.wpk"))
        return try CrossEncoder(store: WeightStore(path: folder.file("m.wpk")))
    }

    @Test(arguments: families) func scoresMatchSentenceTransformers(family: String) throws {
        let folder = TemporaryFolder()
        let model = try Self.model(family, in: folder)
        let expected = Fixtures.json("cross-encoders/\(family)/expected.json")
        #expect(model.maxLength == expected["max_length"]!.int!)
        let pairs = expected["pairs"]!.array!.map { ($0.array![0].string!, $0.array![1].string!) }
        for ((a, b), ids) in zip(pairs, expected["input_ids"]!.array!) {
            #expect(model.tokenizer.encode(a, pair: b).ids == ids.ints, "\(family): \(a) / \(b)")
        }
        let scores = try model.scores(pairs, batchSize: 4)
        for ((a, b), (got, want)) in zip(pairs, zip(scores, expected["scores"]!.array!.map(\.floats))) {
            #expect(got.count == want.count)
            let diff = zip(got, want).map { abs($0 - $1) }.max() ?? 0
            #expect(diff <= 1e-5, "\(family) \(a) / \(b): \(got) vs \(want)")
        }
    }

    @Test func rankOrdersByScore() throws {
        let folder = TemporaryFolder()
        let model = try Self.model("bert", in: folder)
        let docs = ["Paris is the capital of France.", "A man is eating food.", "The girl is carrying a baby."]
        let ranked = try model.rank(query: "capital of France", documents: docs)
        let scores = try model.scores(docs.map { ("capital of France", $0) }).map { $0[0] }
        #expect(ranked.map(\.index) == scores.indices.sorted { scores[$0] > scores[$1] })
        #expect(model.activation == .sigmoid && model.labels.count == 1)
    }

    @Test func anEmbeddingModelIsNotACrossEncoder() throws {
        let folder = TemporaryFolder()
        try pack([Fixtures.path("encoders/bert")], to: folder.file("m.wpk"))
        #expect(throws: ModelError.self) { try CrossEncoder(store: WeightStore(path: folder.file("m.wpk"))) }
    }
}
