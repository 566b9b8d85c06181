import LazyTensor
import WeightStore

/// A decoder-only language model of the LLaMA or GPT-2 family, run from a store packed from
/// its GGUF file or its Hugging Face folder: the weights stay as stored (Q4_1, Q8_0 blocks
/// and float32 alike) as views of the mapping, which the matrix products read in place, so
/// processes that run the same .wpk share its pages.
///
///     let model = try TextDecoder(store: WeightStore(path: "smollm2.wpk"))
///     let session = model.makeSession(capacity: 512)
///     var logits = try session.logits(after: model.tokenizer.encode("Hello").ids)   // prefill
///     logits = try session.logits(after: [next])                                   // one step
///
/// A forward pass computes the logits of its last position only, and writes its keys and
/// values into the session's caches in place.
public final class TextDecoder: Sendable {
    public let config: DecoderConfig
    public let tokenizer: Tokenizer
    /// The model's chat template (Jinja text), when its file has one.
    public let chatTemplate: String?
    /// Ids that end a generation: the end-of-sequence token and, where the vocabulary names
    /// them, end-of-turn tokens.
    public let endOfSequenceIDs: Set<Int>
    public let bosToken: String?
    public let eosToken: String?
    let embedding: Embedding
    /// GPT-2's learned positions.
    let positions: Embedding?
    let blocks: [DecoderBlock]
    let norm: DecoderNorm
    let head: Linear
    let rotary: RotaryEmbedding?
    /// Kept so the mapping the weights view outlives them.
    public let store: WeightStore

    public init(store: WeightStore) throws {
        let c = try DecoderConfig(store: store)
        config = c
        self.store = store
        let special: DecoderSpecialTokens
        switch c.layout {
        case .gguf:
            tokenizer = try Tokenizer(ggufStore: store)
            special = DecoderSpecialTokens(gguf: store, tokenizer: tokenizer)
        case .huggingFace:
            tokenizer = try Tokenizer(store: store)
            special = try DecoderSpecialTokens(folder: store, tokenizer: tokenizer)
        }
        guard tokenizer.largestID < c.vocabularySize else {
            throw ModelError.badConfig("the tokenizer's ids reach \(tokenizer.largestID) but the model has \(c.vocabularySize) token rows")
        }
        chatTemplate = special.chatTemplate
        endOfSequenceIDs = special.endOfSequenceIDs
        bosToken = special.bosToken
        eosToken = special.eosToken

        let names = c.names
        embedding = try Embedding(store: store, name: names.tokenEmbedding, rows: c.vocabularySize, width: c.hiddenSize)
        if c.architecture == .gpt2 {
            positions = try Embedding(store: store, name: names.positionEmbedding, rows: c.contextLength, width: c.hiddenSize)
            rotary = nil
        } else {
            positions = nil
            rotary = try RotaryEmbedding(headDim: c.headDim, maxPositions: c.contextLength, theta: c.ropeTheta,
                                         pairing: c.layout == .gguf ? .interleaved : .halves, scaling: c.ropeScaling)
        }
        blocks = try (0..<c.layers).map { [rotary] in try DecoderBlock(store: store, index: $0, config: c, rotary: rotary) }
        norm = try DecoderNorm(store: store, prefix: names.finalNorm, config: c)
        head = c.tiedEmbeddings ? Linear(weight: embedding.table, bias: nil)
            : try Linear(store: store, prefix: names.outputHead, inFeatures: c.hiddenSize, outFeatures: c.vocabularySize)
    }

    /// The positions a session may hold: the context, or Mistral's sliding window when it is
    /// shorter (wpack's attention sees every cached position, which is only the model's
    /// attention while the sequence fits the window).
    public var maxPositions: Int { Swift.min(config.contextLength, config.slidingWindow ?? Int.max) }

    /// A sequence's state: one key/value cache per layer, for `capacity` positions (at most
    /// `maxPositions`).
    public func makeSession(capacity: Int) -> DecoderSession {
        DecoderSession(decoder: self, capacity: Swift.max(1, Swift.min(capacity, maxPositions)))
    }

    /// The logits [1, 1, vocabulary] of the last of `ids` (int [1, T]) at `positions` (int [T]),
    /// writing their keys and values into `caches` where `placement` says.
    func forward(_ ids: Tensor, positions: Tensor, caches: [KVCache], placement: KVCache.Placement) -> Tensor {
        let t = ids.shape[1]
        // The positions are read when the kernels run, like the ids, so decode steps share a
        // plan, and a replayed step takes each new position from the same buffer.
        let rotation = rotary?.rotation(positions: positions)
        var x = embedding(ids)
        if let table = self.positions { x = x + table(positions.reshaped([1, t])) }
        for (block, cache) in zip(blocks, caches) { x = block(x, cache: cache, placement: placement, rotation: rotation) }
        let last = t == 1 ? x : x.sliced(axis: 1, range: (t - 1)..<t)
        return head(norm(last))
    }
}

/// One sequence being generated: the caches its positions have been written to. Used from one
/// task at a time.
public final class DecoderSession {
    public let decoder: TextDecoder
    public let capacity: Int
    let caches: [KVCache]

    init(decoder: TextDecoder, capacity: Int) {
        self.decoder = decoder
        self.capacity = capacity
        let c = decoder.config
        caches = (0..<c.layers).map { _ in KVCache(heads: c.kvHeads, capacity: capacity, headDim: c.headDim) }
    }

    /// Positions written so far.
    public var length: Int { caches[0].length }

    /// Runs `ids` after the positions already written (a whole prompt at once, or one
    /// generated token) and returns the logits of the last of them.
    public func logits(after ids: [Int]) throws -> [Float] {
        guard !ids.isEmpty else { throw ModelError.badInput("no token ids to run") }
        guard length + ids.count <= capacity else {
            throw ModelError.badInput("\(length) positions and \(ids.count) more exceed the session's capacity of \(capacity)")
        }
        let vocabulary = decoder.config.vocabularySize
        if let bad = ids.first(where: { $0 < 0 || $0 >= vocabulary }) {
            throw ModelError.badInput("token id \(bad) is outside the vocabulary of \(vocabulary)")
        }
        if ids.count == 1 { return try step(ids[0]) }
        let start = length
        return try Tensor.withErrors {
            decoder.forward(Tensor(shape: [1, ids.count], integers: ids), positions: Tensor(shape: [ids.count], integers: Array(start..<(start + ids.count))),
                            caches: caches, placement: .now).materialized().scalars
        }
    }

    /// One decode step's graph, built at the first step and replayed at every later one with
    /// the new id and position written into its buffers: the step's kernels run and nothing
    /// else (no graph built, no plan looked up).
    private struct Step {
        let ids: Tensor
        let positions: Tensor
        let replay: Replay
    }
    private var decodeStep: Step?

    private func step(_ id: Int) throws -> [Float] {
        let step = try decodeStep ?? Tensor.withErrors {
            let ids = Tensor(shape: [1, 1], integers: [0]), positions = Tensor(shape: [1], integers: [0])
            return Step(ids: ids, positions: positions,
                        replay: Replay([decoder.forward(ids, positions: positions, caches: caches, placement: .whenRun)]))
        }
        decodeStep = step
        let logits = try Tensor.withErrors {
            step.ids.assign(integers: [id])
            step.positions.assign(integers: [length])
            return step.replay.run()[0].scalars
        }
        try Tensor.withErrors { for c in caches { c.advance(by: 1) } }
        return logits
    }

    /// Forgets every position, keeping the caches' storage.
    public func reset() { for c in caches { c.reset() } }
}
