import Foundation
import LazyTensor
import WeightStore

/// A sentence-transformers model run as its folder describes it: the tokenizer
/// (tokenizer.json or vocab.txt), a transformer encoder of any supported family, then the
/// modules of modules.json in order (Pooling, Dense, Normalize), prompts included.
public struct SentenceEncoder: Sendable {
    public let config: EncoderConfig
    public let tokenizer: Tokenizer
    public let encoder: TransformerEncoder
    public let modules: SentenceTransformerModules
    let pooling: Pooling
    /// The modules after pooling, in order.
    let tail: [Tail]
    /// Tokens per text at most, special tokens included.
    public let maxLength: Int
    let lowercaseInput: Bool
    /// Keeps the mapping alive for as long as the model is.
    public let store: WeightStore
    /// The plan of the last batch shape, replayed by `vectors`.
    let replays = BatchReplays()

    enum Tail: Sendable { case dense(Dense), normalize }

    public init(store: WeightStore) throws {
        config = try EncoderConfig(store: store)
        var tokenizer = try Tokenizer(store: store)
        modules = try SentenceTransformerModules(files: store.file)
        guard case let .transformer(maxSequenceLength, lowercase)? = modules.modules.first else {
            throw ModelError.badConfig("modules.json must start with a Transformer module")
        }
        let limit = config.tokenLimit(sequenceLength: maxSequenceLength, tokenizer: tokenizer)
        maxLength = limit
        // sentence-transformers passes max_length to the tokenizer, which replaces whatever
        // truncation tokenizer.json carries.
        tokenizer.maxLength = limit
        self.tokenizer = tokenizer
        lowercaseInput = lowercase
        encoder = try TransformerEncoder(store: store, config: config)
        try encoder.check(tokenizer)
        var pooling: Pooling?
        var tail: [Tail] = []
        for module in modules.modules.dropFirst() {
            switch module {
            case let .pooling(p):
                guard pooling == nil else { throw ModelError.badConfig("modules.json has two Pooling modules") }
                if let d = p.dimension, d != config.hiddenSize {
                    throw ModelError.badConfig("the Pooling module expects width \(d), the encoder gives \(config.hiddenSize)")
                }
                pooling = p
            case let .dense(path, text):
                guard pooling != nil else { throw ModelError.badConfig("a Dense module before Pooling is not implemented by wpack") }
                tail.append(.dense(try Dense(store: store, path: path, configJSON: text)))
            case .normalize:
                guard pooling != nil else { throw ModelError.badConfig("a Normalize module before Pooling is not implemented by wpack") }
                tail.append(.normalize)
            case .transformer: break
            }
        }
        guard let pooling else { throw ModelError.badConfig("modules.json has no Pooling module") }
        self.pooling = pooling
        self.tail = tail
        self.store = store
    }

    /// The width of the vectors `embed` returns.
    public var dimension: Int {
        var d = pooling.outputDimension(hidden: config.hiddenSize)
        for case let .dense(layer) in tail { d = layer.linear.outFeatures }
        return d
    }

    /// Whether the output vectors are L2-normalised (modules.json lists Normalize last).
    public var normalizes: Bool { if case .normalize? = tail.last { true } else { false } }

    /// The prompt text to use for a named prompt of config_sentence_transformers.json.
    public func prompt(named name: String) throws -> String {
        guard let p = modules.prompts[name] else {
            let known = modules.prompts.keys.sorted()
            throw ModelError.badInput("no prompt named '\(name)'" + (known.isEmpty ? " (the model defines none)" : "; the model defines \(known.joined(separator: ", "))"))
        }
        return p
    }

    /// Token ids of one text, as the model sees them (special tokens added, truncated).
    public func tokenize(_ text: String) -> [Int] {
        tokenizer.encode(lowercaseInput ? text.lowercased() : text).ids
    }

    /// One vector per text, in input order. `prompt` is put before every text (and, where the
    /// Pooling module says include_prompt false, left out of the pooling); nil takes the
    /// model's default prompt if it names one. Texts are sorted by length, longest first, and
    /// cut into batches of at most `batchSize` texts and `maxBatchTokens` padded tokens, so a
    /// batch pads little (about 1% on a corpus of 5 to 256 tokens a text) and its activations
    /// stay bounded; padding is masked out of attention and pooling, so a text's vector does
    /// not depend on its batch. `progress` is told how many texts each finished batch held.
    public func embed(_ texts: [String], batchSize: Int = 32, maxBatchTokens: Int = 16384, prompt: String? = nil,
                      progress: ((Int) -> Void)? = nil) throws -> [[Float]] {
        guard batchSize >= 1 else { throw ModelError.badInput("batch size must be at least 1") }
        guard maxBatchTokens >= 1 else { throw ModelError.badInput("the token budget of a batch must be at least 1") }
        let usedPrompt = prompt ?? modules.defaultPromptName.flatMap { modules.prompts[$0] }
        var promptLength = 0
        if let usedPrompt, !usedPrompt.isEmpty {
            // sentence-transformers: the tokenized prompt's length without its final special token.
            promptLength = Swift.max(0, tokenize(usedPrompt).count - 1)
        }
        let tokenized = texts.map { tokenize((usedPrompt ?? "") + $0) }
        if let empty = tokenized.firstIndex(where: \.isEmpty) {
            // Only a tokenizer that adds no special tokens can do this; the encoder needs one.
            throw ModelError.badInput("text \(empty) gives no tokens at all (its tokenizer adds no special tokens)")
        }
        var vectors = [[Float]](repeating: [], count: texts.count)
        for indices in LengthBatches.plan(tokenized.map(\.count), maxTexts: batchSize, maxTokens: maxBatchTokens) {
            let batch = indices.map { tokenized[$0] }
            for (i, v) in zip(indices, embedBatch(batch, promptLength: promptLength)) { vectors[i] = v }
            progress?(indices.count)
        }
        return vectors
    }

    /// The vectors of one batch, as a lazy [B, D] tensor. The encoder runs the texts packed,
    /// with no padding (TransformerEncoder.packedHiddenStates); pooling then reads them laid
    /// out [B, T, H] under a mask, through one gather (none for a single text).
    public func pooled(_ batch: [[Int]], promptLength: Int = 0) -> Tensor {
        pooled(batch, packed: encoder.packedHiddenStates(batch), promptLength: promptLength)
    }

    /// pooled(batch) evaluated, [B, D]: the same values, bit for bit. A batch of the same text
    /// lengths (and prompt length) as the last one (BatchReplays) replays that batch's plan with these
    /// ids instead of building and planning its graph again.
    public func vectors(_ batch: [[Int]], promptLength: Int = 0) -> Tensor {
        guard !batch.isEmpty, encoder.readsIdsOnlyForWords(batch) else { return pooled(batch, promptLength: promptLength).materialized() }
        let shape = BatchReplays.Shape(lengths: batch.map(\.count), promptLength: promptLength)
        let ids = batch.flatMap { $0 }
        let entry: BatchReplays.Entry
        if let kept = replays.take(shape) {
            kept.ids.assign(integers: ids)
            entry = kept
        } else {
            let buffer = Tensor(shape: [1, ids.count], integers: ids)
            let graph = pooled(batch, packed: encoder.packedHiddenStates(batch, ids: buffer), promptLength: promptLength)
            entry = BatchReplays.Entry(shape: shape, ids: buffer, replay: Replay([graph]))
        }
        defer { replays.put(entry) }
        return entry.replay.run()[0]
    }

    private func pooled(_ batch: [[Int]], packed: Tensor, promptLength: Int) -> Tensor {
        let length = batch.map(\.count).max() ?? 1
        var mask = [Float]()
        mask.reserveCapacity(batch.count * length)
        for row in batch {
            mask += [Float](repeating: 1, count: row.count) + [Float](repeating: 0, count: length - row.count)
        }
        let h = packed.shape[2]
        let hidden: Tensor
        if batch.count == 1 {
            hidden = packed
        } else {
            // Padding positions repeat a real row of their text; the mask keeps them out.
            var rows: [Int] = []
            rows.reserveCapacity(batch.count * length)
            var start = 0
            for text in batch {
                for t in 0..<length { rows.append(start + Swift.min(t, Swift.max(text.count - 1, 0))) }
                start += text.count
            }
            hidden = packed.reshaped([start, h]).gatherRows(rows, indexShape: [batch.count, length])
        }
        var v = pooling(hidden, mask: mask, promptLength: promptLength)
        for step in tail {
            switch step {
            case let .dense(layer): v = layer(v)
            case .normalize:
                let norm = v.squared().sum(axes: [1], keepingDims: true).sqrt()
                v = v / LazyTensor.max(norm, 1e-12)
            }
        }
        return v
    }

    func embedBatch(_ batch: [[Int]], promptLength: Int) -> [[Float]] {
        let values = vectors(batch, promptLength: promptLength).scalars
        let d = values.count / Swift.max(batch.count, 1)
        return (0..<batch.count).map { Array(values[($0 * d)..<(($0 + 1) * d)]) }
    }
}
