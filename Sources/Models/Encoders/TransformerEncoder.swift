import Foundation
import LazyTensor
import WeightStore

/// A transformer encoder of any family EncoderArchitecture names: embeddings (words,
/// positions, token types where the family has them, ELECTRA's projection), the layer stack,
/// MPNet's relative position bias. Every weight is a view into the store.
public struct TransformerEncoder: Sendable {
    public let config: EncoderConfig
    let words, positions: Embedding
    let tokenTypes: Embedding?
    let embeddingNorm: LayerNorm
    let projection: Linear?
    let relativeBias: Tensor?
    let layers: [EncoderLayer]
    /// The prefix of the base model's weights in a task checkpoint ("bert.", "roberta.", ...).
    let weightPrefix: String

    public init(store: WeightStore, config: EncoderConfig) throws {
        self.config = config
        let names = try EncoderWeightNames.detect(in: store, architecture: config.architecture)
        weightPrefix = names.prefix
        let e = config.embeddingSize
        words = try Embedding(store: store, name: names.words, rows: config.vocabularySize, width: e)
        positions = try Embedding(store: store, name: names.positions, rows: config.maxPositions, width: e)
        if config.typeVocabularySize > 0 {
            tokenTypes = try Embedding(store: store, name: names.tokenTypes, rows: config.typeVocabularySize, width: e)
        } else {
            tokenTypes = nil
        }
        embeddingNorm = try LayerNorm(store: store, prefix: names.embeddingNorm, size: e, eps: config.layerNormEps)
        if e != config.hiddenSize {
            projection = try Linear(store: store, prefix: names.embeddingProjection, inFeatures: e, outFeatures: config.hiddenSize, requireBias: true)
        } else {
            projection = nil
        }
        if config.architecture == .mpnet {
            relativeBias = try store.weight(names.relativeAttentionBias, shape: [config.relativeAttentionBuckets, config.heads])
        } else {
            relativeBias = nil
        }
        layers = try (0..<config.layers).map { try EncoderLayer(store: store, names: names.layer($0), config: config) }
    }

    /// Refuses a tokenizer that can produce ids past the embedding table (a vocab.txt with a
    /// token appended, say), which would otherwise index outside it.
    public func check(_ tokenizer: Tokenizer) throws {
        let largest = tokenizer.largestID
        guard largest < config.vocabularySize else {
            throw ModelError.badConfig("the tokenizer has ids up to \(largest), the model's embedding table only \(config.vocabularySize) rows (vocab_size)")
        }
    }

    /// The additive attention mask [B, 1, 1, T] for a 0/1 mask [B, T].
    static func additiveMask(_ mask: [Float], batch: Int, length: Int) -> Tensor {
        Tensor(shape: [batch, 1, 1, length], scalars: mask.map { $0 > 0 ? 0 : -1e30 })
    }

    /// MPNet's bucket of each relative position j - i (transformers' relative_position_bucket,
    /// bidirectional, max distance 128), computed in float32 as PyTorch does.
    static func relativeBucket(_ relative: Int, buckets: Int, maxDistance: Int = 128) -> Int {
        let half = buckets / 2
        var n = -relative
        var bucket = n < 0 ? half : 0
        n = Swift.abs(n)
        let maxExact = half / 2
        if n < maxExact { return bucket + n }
        let scaled = Float(Foundation.log(Float(n) / Float(maxExact))) / Float(Foundation.log(Double(maxDistance) / Double(maxExact)))
        let large = maxExact + Int(scaled * Float(half - maxExact))
        bucket += Swift.min(large, half - 1)
        return bucket
    }

    /// MPNet's relative position bias for T tokens, [1, heads, T, T].
    func relativePositionBias(length t: Int) -> Tensor? {
        // transformers buckets with its default of 32 whatever the config says (compute_position_bias
        // is called without num_buckets); so do we, to give its numbers.
        let bucketCount = 32
        guard let relativeBias else { return nil }
        var buckets = [Int](repeating: 0, count: t * t)
        for i in 0..<t { for j in 0..<t { buckets[i * t + j] = Self.relativeBucket(j - i, buckets: bucketCount) } }
        return relativeBias.gatherRows(buckets, indexShape: [t, t]).permuted([2, 0, 1]).unsqueezed(axis: 0)
    }

    /// transformers' position ids of one text's tokens. BERT, DistilBERT and ELECTRA number
    /// tokens from 0. The RoBERTa family and MPNet number them as create_position_ids_from_input_ids
    /// does: from padding index + 1, skipping every token whose id is the padding id (which
    /// takes the padding index itself).
    func positionIDs(_ text: [Int]) -> [Int] {
        let first = config.firstPosition
        guard config.architecture.positionsAfterPadding else { return (0..<text.count).map { first + $0 } }
        let pad = config.positionPaddingIndex
        var count = 0
        return text.map { id in
            if id == pad { return pad }
            count += 1
            return pad + count
        }
    }

    /// The position rows of texts laid end to end ([1, N]) or, with `length`, each padded to
    /// it ([B, length]). A slice of the table, a view, where every text is numbered plainly
    /// from the first position in one shared layout (the usual case); else the rows gathered.
    func positionEmbeddings(_ texts: [[Int]], paddedTo length: Int? = nil) -> Tensor {
        let first = config.firstPosition
        let plain = !config.architecture.positionsAfterPadding || !texts.contains { $0.contains(config.positionPaddingIndex) }
        if plain, length != nil || texts.count == 1 {
            let n = length ?? texts[0].count
            return positions.table.sliced(axis: 0, range: first..<(first + n))
        }
        var rows: [Int] = []
        for text in texts {
            rows += positionIDs(text)
            // Padding takes any valid row: the mask keeps it out of every real token.
            if let length { rows += [Int](repeating: first, count: length - text.count) }
        }
        return positions(rows, shape: length.map { [texts.count, $0] } ?? [1, rows.count])
    }

    /// The last hidden states of several texts packed one after another with no padding,
    /// [1, N, H] for N their total length (lazy). The linear layers run over the N real tokens
    /// only and each text's attention over its own length, as text-embeddings-inference's
    /// "nested" attention does: no work on padding. Row offsets of text i are the sum of the
    /// lengths before it.
    public func packedHiddenStates(_ texts: [[Int]], typeIds: [[Int]]? = nil) -> Tensor {
        let ids = texts.flatMap { $0 }
        return packedHiddenStates(texts, wordRows: words(ids, shape: [1, ids.count]), typeIds: typeIds)
    }

    /// packedHiddenStates with the word rows looked up from `ids` ([1, N] integers) when the
    /// graph runs, so that a Replay of it encodes whatever `ids` then holds: valid for texts of
    /// the same lengths whose positions are plain (`readsIdsOnlyForWords`). `texts` gives the
    /// lengths and the positions.
    public func packedHiddenStates(_ texts: [[Int]], ids: Tensor) -> Tensor {
        packedHiddenStates(texts, wordRows: words(ids), typeIds: nil)
    }

    /// Whether the packed graph of these texts (with no token types) depends on their ids only
    /// through the word rows: true unless the family numbers positions after padding (RoBERTa,
    /// MPNet) and a text holds the padding id, which moves the positions after it.
    public func readsIdsOnlyForWords(_ texts: [[Int]]) -> Bool {
        !config.architecture.positionsAfterPadding || !texts.contains { $0.contains(config.positionPaddingIndex) }
    }

    private func packedHiddenStates(_ texts: [[Int]], wordRows: Tensor, typeIds: [[Int]]?) -> Tensor {
        let lengths = texts.map(\.count)
        let n = lengths.reduce(0, +)
        var embedded = wordRows + positionEmbeddings(texts)
        if let tokenTypes {
            if let typeIds, typeIds.contains(where: { $0.contains { $0 != 0 } }) {
                embedded = embedded + tokenTypes(typeIds.flatMap { $0 }, shape: [1, n])
            } else {
                embedded = embedded + tokenTypes.table.sliced(axis: 0, range: 0..<1)
            }
        }
        var hidden = embeddingNorm(embedded)
        if let projection { hidden = projection(hidden) }
        let bias = relativePositionBias(length: lengths.max() ?? 0)
        for layer in layers { hidden = layer(hidden, attentionBias: bias, segments: lengths) }
        return hidden
    }

    /// Hidden states after the embeddings and after each layer (lazy; nothing runs yet).
    /// ids: [B·T] token ids, row-major; mask: [B·T] of 1 (token) or 0 (padding); typeIds:
    /// [B·T] token type ids (nil: all 0).
    public func hiddenStates(ids: [Int], mask: [Float], typeIds: [Int]? = nil, batch: Int, length: Int) -> [Tensor] {
        // Right-padded rows: each text is its first tokens, as many as its mask marks.
        let texts = (0..<batch).map { b in (0..<length).filter { mask[b * length + $0] > 0 }.map { ids[b * length + $0] } }
        var embedded = words(ids, shape: [batch, length]) + positionEmbeddings(texts, paddedTo: length)
        if let tokenTypes {
            if let typeIds, typeIds.contains(where: { $0 != 0 }) {
                embedded = embedded + tokenTypes(typeIds, shape: [batch, length])
            } else {
                embedded = embedded + tokenTypes.table.sliced(axis: 0, range: 0..<1)
            }
        }
        var hidden = embeddingNorm(embedded)
        if let projection { hidden = projection(hidden) }
        var states = [hidden]
        var bias = Self.additiveMask(mask, batch: batch, length: length)
        if let relative = relativePositionBias(length: length) { bias = relative + bias }
        for layer in layers { states.append(layer(states.last!, attentionBias: bias)) }
        return states
    }
}
