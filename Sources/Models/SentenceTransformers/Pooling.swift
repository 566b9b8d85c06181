import WeightStore
import LazyTensor

/// sentence-transformers' Pooling module: token vectors [B, T, H] to one vector per text,
/// by each configured mode in turn, concatenated.
public struct Pooling: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        case cls, max, mean, meanSqrtLen = "mean_sqrt_len_tokens", weightedMean = "weightedmean", lastToken = "lasttoken"
    }

    public var modes: [Mode]
    public var includePrompt: Bool
    public var dimension: Int?

    public init(modes: [Mode], includePrompt: Bool = true, dimension: Int? = nil) {
        self.modes = modes
        self.includePrompt = includePrompt
        self.dimension = dimension
    }

    /// The module's config.json, in the current form (`pooling_mode`) or the older one
    /// (`pooling_mode_*_tokens` flags, read in sentence-transformers' fixed order).
    public init(configJSON text: String) throws {
        let j: JSONValue
        do { j = try JSONValue.parse(text) } catch { throw ModelError.badConfig("pooling config.json: \(error)") }
        guard let pairs = j.pairs else { throw ModelError.badConfig("pooling config.json is not an object") }
        var modes: [Mode] = []
        if let given = j["pooling_mode"] {
            guard let names = given.string.map({ [$0] }) ?? given.array.flatMap({ list in
                list.allSatisfy({ $0.string != nil }) ? list.map { $0.string! } : nil
            }), !names.isEmpty else {
                throw ModelError.badConfig("pooling config.json: pooling_mode must be a mode name or a non-empty list of them")
            }
            for name in names {
                guard let m = Mode(rawValue: name) else {
                    throw ModelError.badConfig("pooling mode '\(name)' is not one wpack implements (\(Mode.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                modes.append(m)
            }
        } else {
            let legacy: [(String, Mode)] = [("pooling_mode_cls_token", .cls), ("pooling_mode_max_tokens", .max),
                                            ("pooling_mode_mean_tokens", .mean), ("pooling_mode_mean_sqrt_len_tokens", .meanSqrtLen),
                                            ("pooling_mode_weightedmean_tokens", .weightedMean), ("pooling_mode_lasttoken", .lastToken)]
            for (key, mode) in legacy {
                guard let value = j[key] else { continue }
                guard let on = value.bool else { throw ModelError.badConfig("pooling config.json: \(key) must be true or false") }
                if on { modes.append(mode) }
            }
            if modes.isEmpty { modes = [.mean] }
        }
        let known: Set<String> = ["pooling_mode", "include_prompt", "word_embedding_dimension", "embedding_dimension",
                                  "pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_tokens",
                                  "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"]
        for (key, value) in pairs where !known.contains(key) {
            // An option we do not know could change the numbers: refuse unless it is off.
            if value.isNull || value.bool == false { continue }
            throw ModelError.badConfig("pooling option '\(key)' is not implemented by wpack")
        }
        if let v = j["include_prompt"], v.bool == nil { throw ModelError.badConfig("pooling config.json: include_prompt must be true or false") }
        let dimension = j["word_embedding_dimension"] ?? j["embedding_dimension"]
        if let dimension, !dimension.isNull, (dimension.exactInt ?? 0) <= 0 {
            throw ModelError.badConfig("pooling config.json: the embedding dimension must be a positive integer")
        }
        self.init(modes: modes, includePrompt: j["include_prompt"]?.bool ?? true, dimension: dimension?.exactInt)
    }

    public func outputDimension(hidden: Int) -> Int { modes.count * hidden }

    /// hidden: [B, T, H]; mask: [B·T] of 1 (token) / 0 (padding), right-padded; promptLength:
    /// leading tokens (the prompt, [CLS] included) left out when includePrompt is false.
    public func callAsFunction(_ hidden: Tensor, mask: [Float], promptLength: Int = 0) -> Tensor {
        let (b, t, h) = (hidden.shape[0], hidden.shape[1], hidden.shape[2])
        var poolMask = mask
        if !includePrompt && promptLength > 0 {
            for row in 0..<b { for j in 0..<Swift.min(promptLength, t) { poolMask[row * t + j] = 0 } }
        }
        let m = Tensor(shape: [b, t, 1], scalars: poolMask)
        var outputs: [Tensor] = []
        var sum: Tensor?, count: Tensor?
        for mode in modes {
            switch mode {
            case .cls, .lastToken:
                // The first (last) token the pooling mask keeps; the first (last) token if none.
                let rows = (0..<b).map { row -> Int in
                    let slice = poolMask[(row * t)..<((row + 1) * t)]
                    let index = mode == .cls ? slice.firstIndex(where: { $0 > 0 }) : slice.lastIndex(where: { $0 > 0 })
                    return index.map { $0 - row * t } ?? (mode == .cls ? 0 : t - 1)
                }
                var picked = hidden.reshaped([b * t, h]).gatherRows((0..<b).map { $0 * t + rows[$0] })
                if mode == .lastToken {
                    // sentence-transformers gathers from the masked embeddings: a row with no
                    // kept token gives zeros.
                    let keep = Tensor(shape: [b, 1], scalars: (0..<b).map { poolMask[$0 * t + rows[$0]] > 0 ? 1 : 0 })
                    picked = picked * keep
                }
                outputs.append(picked)
            case .max:
                let filled = Tensor(shape: [b, t, 1], scalars: poolMask.map { $0 > 0 ? 0 : -Float.infinity })
                outputs.append((hidden + filled).max(axes: [1]))
            case .mean, .meanSqrtLen:
                if sum == nil {
                    sum = (hidden * m).sum(axes: [1])
                    count = LazyTensor.max(m.sum(axes: [1]), 1e-9)
                }
                outputs.append(mode == .mean ? sum! / count! : sum! / count!.sqrt())
            case .weightedMean:
                // Weights 1...T over the kept tokens (positions counted from the first real
                // token; with right padding, from the start).
                let weights = Tensor(shape: [b, t, 1], scalars: (0..<(b * t)).map { poolMask[$0] * Float($0 % t + 1) })
                let total = (hidden * weights).sum(axes: [1])
                outputs.append(total / LazyTensor.max(weights.sum(axes: [1]), 1e-9))
            }
        }
        return outputs.count == 1 ? outputs[0] : Tensor.concatenate(outputs, axis: 1)
    }
}
