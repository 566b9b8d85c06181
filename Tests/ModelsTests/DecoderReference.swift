import Foundation
import LazyTensor
import Testing
import WeightStore
@testable import Models

/// The decoder fixtures' references (tools/fixtures/make_hf_decoder_fixtures.py): transformers'
/// logits for each prompt and greedy step, and llama.cpp's token ids for the GGUF files.
enum DecoderReference {
    /// Packs a GGUF fixture (a path under Tests/Fixtures) and opens its decoder.
    static func ggufDecoder(_ fixture: String, in folder: TemporaryFolder) throws -> TextDecoder {
        let path = folder.file("gguf-\(UUID().uuidString).wpk")
        try pack([Fixtures.path(fixture)], to: path)
        return try TextDecoder(store: WeightStore(path: path))
    }

    /// Every text of a tokenizer_ids.json must give llama.cpp's ids; the ids must use a real
    /// vocabulary (a broken fixture would agree with anything).
    static func expectLlamaCppIds(_ tokenizer: Tokenizer, _ fixture: String) {
        let rows = Fixtures.json(fixture)["rows"]!.array!
        #expect(rows.count > 2000)
        #expect(Set(rows.flatMap { $0["ids"]!.ints }).count >= 200)
        var mismatches: [String] = []
        for row in rows where tokenizer.encode(row["text"]!.string!).ids != row["ids"]!.ints {
            mismatches.append(row["text"]!.string!.debugDescription)
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(rows.count) differ, first: \(mismatches.prefix(3))")
    }

    /// Runs `ids` through a new session of `model`, then one token per step, and expects each
    /// step's logits within 1e-4 of the range of the reference's row (`logits`: a .npy under
    /// Tests/Fixtures, [steps + 1, vocabulary]). The tokens fed are `forced` when given (the
    /// reference's own choices), otherwise wpack's greedy choices, which are returned.
    @discardableResult
    static func expectLogits(_ model: TextDecoder, ids: [Int], logits fixture: String, steps: Int, forced: [Int]? = nil,
                             label: String) throws -> [Int] {
        let width = model.config.vocabularySize
        let expected = try ArrayFile.readNpy(path: Fixtures.path(fixture))
        #expect(expected.shape == [steps + 1, width], "\(label)")
        let rows = expected.scalars
        let session = model.makeSession(capacity: ids.count + steps)
        var logits = try session.logits(after: ids)
        var generated: [Int] = []
        for step in 0...steps {
            let row = Array(rows[(step * width)..<((step + 1) * width)])
            let range = row.max()! - row.min()!
            let worst = zip(logits, row).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-4 * range, "\(label) step \(step): worst \(worst) of a range of \(range)")
            if step == steps { break }
            let next = forced?[step] ?? logits.indices.max { logits[$0] < logits[$1] }!
            generated.append(next)
            logits = try session.logits(after: [next])
        }
        return generated
    }
}
