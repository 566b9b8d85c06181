import LazyTensor
import WeightStore

/// A decoder-only language model of the LLaMA family, run from a store packed from its GGUF
/// file: the weights stay in their stored blocks (Q4_1, Q8_0 ...) as views of the mapping,
/// which the matrix products decode in registers, so processes that run the same .wpk share
/// its pages.
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
    let blocks: [DecoderBlock]
    let norm: RMSNorm
    let head: Linear
    let rotary: RotaryEmbedding
    /// Kept so the mapping the weights view outlives them.
    public let store: WeightStore

    public init(store: WeightStore) throws {
        let c = try DecoderConfig(store: store)
        config = c
        self.store = store
        tokenizer = try Tokenizer(ggufStore: store)
        guard tokenizer.largestID < c.vocabularySize else {
            throw ModelError.badConfig("the tokenizer's ids reach \(tokenizer.largestID) but the model has \(c.vocabularySize) token rows")
        }
        if case let .string(t)? = store.metadataValue("tokenizer.chat_template") { chatTemplate = t } else { chatTemplate = nil }
        func id(_ key: String) -> Int? { if case let .int(i)? = store.metadataValue("tokenizer.ggml.\(key)_token_id") { Int(i) } else { nil } }
        var ends = Set([id("eos"), id("eot"), id("eom")].compactMap { $0 })
        // ChatML models end a turn with <|im_end|>, which llama.cpp also treats as an end of
        // generation when the vocabulary marks it a control token.
        for name in ["<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"] { if let i = tokenizer.id(of: name) { ends.insert(i) } }
        endOfSequenceIDs = ends
        bosToken = id("bos").flatMap(tokenizer.token(of:))
        eosToken = id("eos").flatMap(tokenizer.token(of:))

        embedding = try Embedding(store: store, name: "token_embd.weight", rows: c.vocabularySize, width: c.hiddenSize)
        let rotary = try RotaryEmbedding(headDim: c.headDim, maxPositions: c.contextLength, theta: c.ropeTheta,
                                         pairing: c.layout == .gguf ? .interleaved : .halves, positionScale: c.ropeScale)
        self.rotary = rotary
        blocks = try (0..<c.layers).map { try DecoderBlock(store: store, index: $0, config: c, rotary: rotary) }
        norm = try RMSNorm(store: store, prefix: "output_norm", size: c.hiddenSize, eps: c.rmsNormEps)
        head = c.tiedEmbeddings ? Linear(weight: embedding.table, bias: nil)
            : try Linear(store: store, prefix: "output", inFeatures: c.hiddenSize, outFeatures: c.vocabularySize)
    }

    /// A sequence's state: one key/value cache per layer, for `capacity` positions (at most
    /// the model's context length).
    public func makeSession(capacity: Int) -> DecoderSession {
        DecoderSession(decoder: self, capacity: Swift.max(1, Swift.min(capacity, config.contextLength)))
    }

    /// The logits [1, 1, vocabulary] of the last of `ids` (int32 [1, T]) at positions
    /// start ..< start + T, writing their keys and values into `caches`.
    func forward(_ ids: Tensor, caches: [KVCache]) -> Tensor {
        let t = ids.shape[1]
        let rotation = rotary.rotation(start: caches[0].length, count: t)
        var x = embedding(ids)
        for (block, cache) in zip(blocks, caches) { x = block(x, cache: cache, rotation: rotation) }
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
        return try Tensor.withErrors {
            decoder.forward(Tensor(shape: [1, ids.count], integers: ids), caches: caches).materialized().scalars
        }
    }

    /// Forgets every position, keeping the caches' storage.
    public func reset() { for c in caches { c.reset() } }
}
