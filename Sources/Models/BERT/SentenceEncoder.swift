import LazyTensor
import WeightStore

/// A sentence-transformers model of the BERT family (all-MiniLM-L6-v2 and its kin): WordPiece
/// tokens, the BERT encoder, mean pooling over the attention mask, L2 normalisation.
public struct SentenceEncoder: Sendable {
    public let config: BertConfig
    public let tokenizer: WordPieceTokenizer
    public let encoder: BertEncoder
    /// Keeps the mapping alive for as long as the model is.
    public let store: WeightStore

    public init(store: WeightStore) throws {
        config = try BertConfig(store: store)
        tokenizer = try WordPieceTokenizer(store: store, config: config)
        encoder = try BertEncoder(store: store, config: config)
        self.store = store
    }

    public var dimension: Int { config.hiddenSize }

    /// One unit vector per text. Texts are run in batches of `batchSize`, padded to the longest
    /// text of the batch; padding is masked out of attention and pooling, so a text's vector
    /// does not depend on its batch.
    public func embed(_ texts: [String], batchSize: Int = 32) throws -> [[Float]] {
        guard batchSize >= 1 else { throw ModelError.badInput("batch size must be at least 1") }
        let tokenized = texts.map(tokenizer.encode)
        var vectors: [[Float]] = []
        vectors.reserveCapacity(texts.count)
        var start = 0
        while start < tokenized.count {
            let batch = Array(tokenized[start..<Swift.min(start + batchSize, tokenized.count)])
            vectors += embedBatch(batch)
            start += batchSize
        }
        return vectors
    }

    /// Token ids of one text, as the model sees them ([CLS] ... [SEP], truncated).
    public func tokenize(_ text: String) -> [Int] { tokenizer.encode(text) }

    /// The pooled, normalised vectors of one padded batch, as a lazy [B, H] tensor.
    public func pooled(_ batch: [[Int]]) -> Tensor {
        let length = batch.map(\.count).max() ?? 1
        var ids = [Int](), mask = [Float]()
        for row in batch {
            ids += row + [Int](repeating: tokenizer.pad, count: length - row.count)
            mask += [Float](repeating: 1, count: row.count) + [Float](repeating: 0, count: length - row.count)
        }
        let hidden = encoder.hiddenStates(ids: ids, mask: mask, batch: batch.count, length: length).last!
        let m = Tensor(shape: [batch.count, length, 1], scalars: mask)
        let summed = (hidden * m).sum(axes: [1])
        let counts = m.sum(axes: [1])
        let mean = summed / max(counts, 1e-9)
        let norm = mean.squared().sum(axes: [1], keepingDims: true).sqrt()
        return mean / max(norm, 1e-12)
    }

    func embedBatch(_ batch: [[Int]]) -> [[Float]] {
        let values = pooled(batch).materialized().scalars
        let h = config.hiddenSize
        return (0..<batch.count).map { Array(values[($0 * h)..<(($0 + 1) * h)]) }
    }
}
