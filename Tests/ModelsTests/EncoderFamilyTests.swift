import Foundation
import Testing
@testable import Models
import WeightStore

/// A random-initialised small model of each encoder family, saved by sentence-transformers
/// (tools/fixtures/make_encoder_fixtures.py), against sentence-transformers' vectors.
@Suite struct EncoderFamilyTests {
    static let families = ["bert", "roberta", "xlm-roberta", "camembert", "distilbert", "mpnet", "electra"]

    @Test(arguments: families) func vectorsMatchSentenceTransformers(family: String) throws {
        let folder = TemporaryFolder()
        try pack([Fixtures.path("encoders/\(family)")], to: folder.file("m.wpk"))
        let model = try SentenceEncoder(store: WeightStore(path: folder.file("m.wpk")))
        #expect(model.config.architecture.rawValue == family)
        let expected = Fixtures.json("encoders/\(family)/expected.json")
        let texts = expected["texts"]!.array!.map { $0.string! }
        for (text, ids) in zip(texts, expected["input_ids"]!.array!) {
            #expect(model.tokenize(text) == ids.ints, "\(family): \(text.debugDescription)")
        }
        let vectors = try model.embed(texts, batchSize: 4)
        expectVectorsMatch(vectors, expected["vectors"]!, texts: texts, family)
    }

    @Test func unknownModelTypeIsRefusedByName() throws {
        let config = try String(contentsOfFile: Fixtures.path("encoders/bert/config.json"), encoding: .utf8)
            .replacingOccurrences(of: "\"model_type\": \"bert\"", with: "\"model_type\": \"funnel\"")
        #expect(throws: ModelError.self) { try EncoderConfig(json: config) }
        do { _ = try EncoderConfig(json: config) } catch { #expect("\(error)".contains("model_type 'funnel'")) }
    }

    /// transformers' relative_position_bucket for positions -400 ... 400, as MPNet uses it.
    @Test func mpnetRelativeBucketsMatchTransformers() {
        let expected = Fixtures.json("mpnet/reference.json")["relative_buckets_from_minus_400"]!.ints
        let got = (-400...400).map { TransformerEncoder.relativeBucket($0, buckets: 32) }
        #expect(got == expected)
    }
}

@Suite struct BatchingTests {
    @Test func batchesRespectBothLimits() {
        let lengths = [10, 300, 100, 5, 250, 100, 10, 100, 10, 10]
        let b = LengthBatches.plan(lengths, maxTexts: 4, maxTokens: 256)
        // Longest first, ties in input order: 300, 250, 100 100 | 100 10 | 10 10 10 5.
        #expect(b == [[1], [4], [2, 5], [7, 0], [6, 8, 9, 3]])
        for batch in b { #expect(batch.count == 1 || lengths[batch[0]] * batch.count <= 256) }
        #expect(LengthBatches.plan([], maxTexts: 4, maxTokens: 256).isEmpty)
    }

    /// A text's vector does not depend on the batch it lands in.
    @Test func vectorsDoNotDependOnBatching() throws {
        let folder = TemporaryFolder()
        try pack([Fixtures.path("encoders/mpnet")], to: folder.file("m.wpk"))
        let model = try SentenceEncoder(store: WeightStore(path: folder.file("m.wpk")))
        let texts = ["a", "a much longer text that pads the others", "middle length text", "x y z"]
        let together = try model.embed(texts, batchSize: 4)
        let apart = try model.embed(texts, batchSize: 4, maxBatchTokens: 1)
        for (a, b) in zip(together, apart) { #expect(zip(a, b).map { abs($0 - $1) }.max()! <= 2e-6) }
    }
}

@Suite struct TokenizerModelAgreementTests {
    /// A vocab.txt one token longer than vocab_size (the real MiniLM with a token appended did
    /// it): refused when the model loads, not a trap when a text reaches that token.
    @Test func idsPastTheEmbeddingTableAreRefused() throws {
        let folder = TemporaryFolder()
        let model = folder.file("model")
        try FileManager.default.copyItem(atPath: Fixtures.path("encoders/bert"), toPath: model)
        let vocabulary = try Tokenizer(tokenizerJSON: String(contentsOfFile: model + "/tokenizer.json", encoding: .utf8))
        let size = vocabulary.largestID + 1
        let lines = (0..<size).map { vocabulary.token(of: $0) ?? "[unused\($0)]" } + ["appended"]
        try FileManager.default.removeItem(atPath: model + "/tokenizer.json")
        try (lines.joined(separator: "\n") + "\n").write(toFile: model + "/vocab.txt", atomically: true, encoding: .utf8)
        try pack([model], to: folder.file("m.wpk"))
        #expect(throws: ModelError.badConfig("the tokenizer has ids up to \(size), the model's embedding table only \(size) rows (vocab_size)")) {
            try SentenceEncoder(store: WeightStore(path: folder.file("m.wpk")))
        }
    }
}
