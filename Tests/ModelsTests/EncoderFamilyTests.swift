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
        for (text, (got, want)) in zip(texts, zip(vectors, expected["vectors"]!.array!.map(\.floats))) {
            let (cosine, maxAbs) = compare(got, want)
            #expect(cosine >= 0.99999 && maxAbs <= 1e-4, "\(family) \(text.debugDescription): cosine \(cosine), max abs \(maxAbs)")
        }
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
