import Foundation
import LazyTensor
import WeightStore

/// A cross-encoder (reranker): a ...ForSequenceClassification model that reads a query and a
/// document together and gives the pair a score, as sentence-transformers' CrossEncoder does
/// (its activation: config.json's sentence_transformers.activation_fn, else sigmoid for one
/// label and none for several).
public struct CrossEncoder: Sendable {
    public let config: EncoderConfig
    public let tokenizer: Tokenizer
    let encoder: TransformerEncoder
    let head: ClassificationHead
    public let labels: [String]
    public let activation: Dense.Activation
    public let maxLength: Int
    public let store: WeightStore

    public init(store: WeightStore) throws {
        guard let text = store.file("config.json") else {
            throw ModelError.notAModel(kind: "cross-encoder", reason: "no config.json inside")
        }
        let j: JSONValue
        do { j = try JSONValue.parse(text) } catch { throw ModelError.badConfig("config.json: \(error)") }
        let architectures = j["architectures"]?.array?.compactMap(\.string) ?? []
        guard architectures.contains(where: { $0.hasSuffix("ForSequenceClassification") }) else {
            throw ModelError.notAModel(kind: "cross-encoder", reason: "config.json names no ...ForSequenceClassification architecture")
        }
        config = try EncoderConfig(json: text)
        var labels: [String] = []
        if let id2label = j["id2label"]?.pairs {
            let sorted = try id2label.map { key, value -> (Int, String) in
                guard let i = Int(key), let name = value.string else { throw ModelError.badConfig("config.json: id2label entry '\(key)' is not an index and a name") }
                return (i, name)
            }.sorted { $0.0 < $1.0 }
            guard sorted.map(\.0) == Array(0..<sorted.count) else { throw ModelError.badConfig("config.json: id2label is not numbered 0, 1, ...") }
            labels = sorted.map(\.1)
        }
        if let n = j["num_labels"]?.int, labels.count != n {
            labels = (0..<n).map { "LABEL_\($0)" }
        }
        if labels.isEmpty { labels = ["LABEL_0", "LABEL_1"] }  // transformers' default
        self.labels = labels

        var activationName = j["sentence_transformers"]?["activation_fn"]?.string ?? j["sbert_ce_default_activation_function"]?.string
        if activationName == nil { activationName = labels.count == 1 ? Dense.Activation.sigmoid.rawValue : Dense.Activation.identity.rawValue }
        guard let activation = Dense.Activation(name: activationName!) else {
            throw ModelError.badConfig("cross-encoder activation '\(activationName!)' is not implemented by wpack")
        }
        self.activation = activation

        var tokenizer = try Tokenizer(store: store)
        let limit = config.tokenLimit(sequenceLength: nil, tokenizer: tokenizer)
        tokenizer.maxLength = limit
        maxLength = limit
        self.tokenizer = tokenizer
        encoder = try TransformerEncoder(store: store, config: config)
        try encoder.check(tokenizer)
        head = try ClassificationHead(store: store, config: config, prefix: encoder.weightPrefix, labels: labels.count)
        self.store = store
    }

    /// The scores of each (query, document) pair: one per label, after the activation.
    public func scores(_ pairs: [(String, String)], batchSize: Int = 32) throws -> [[Float]] {
        guard batchSize >= 1 else { throw ModelError.badInput("batch size must be at least 1") }
        let encoded = pairs.map { tokenizer.encode($0.0, pair: $0.1) }
        if let empty = encoded.firstIndex(where: { $0.count == 0 }) {
            throw ModelError.badInput("pair \(empty) gives no tokens at all (its tokenizer adds no special tokens)")
        }
        if config.typeVocabularySize > 0, let bad = encoded.lazy.flatMap(\.typeIds).first(where: { $0 >= config.typeVocabularySize }) {
            throw ModelError.badConfig("the tokenizer gives token type \(bad), the model has \(config.typeVocabularySize) token types")
        }
        var out = [[Float]](repeating: [], count: pairs.count)
        let n = labels.count
        for indices in LengthBatches.plan(encoded.map(\.count), maxTexts: batchSize, maxTokens: .max) {
            let values = logits(indices.map { encoded[$0] }).materialized().scalars
            for (row, i) in indices.enumerated() { out[i] = Array(values[(row * n)..<((row + 1) * n)]) }
        }
        return out
    }

    /// Documents by score for one query, best first: (index into documents, score). A model
    /// with several labels is ranked by its first label's score, as sentence-transformers'
    /// rank is used with one-label rerankers.
    public func rank(query: String, documents: [String], batchSize: Int = 32) throws -> [(index: Int, score: Float)] {
        let s = try scores(documents.map { (query, $0) }, batchSize: batchSize)
        return s.enumerated().map { ($0.offset, $0.element[0]) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    }

    /// Lazy [B, labels] scores of one batch of encoded pairs, run packed (no padding); the
    /// head reads each pair's first token.
    func logits(_ batch: [Encoding]) -> Tensor {
        let packed = encoder.packedHiddenStates(batch.map(\.ids), typeIds: batch.map(\.typeIds))
        var starts: [Int] = []
        var start = 0
        for e in batch { starts.append(start); start += e.count }
        let first = packed.reshaped([start, packed.shape[2]]).gatherRows(starts, indexShape: [batch.count, 1])
        return activation.apply(head(first))
    }
}
