import Foundation

/// Chooses each next token from a step's logits by `SamplingOptions`, drawing from its own
/// seeded stream so that a run can be repeated exactly.
public struct Sampler: Sendable {
    public let options: SamplingOptions
    private var random: SeededRandom

    public init(_ options: SamplingOptions) throws {
        self.options = try options.validated()
        random = SeededRandom(seed: options.seed)
    }

    /// The next token after `context` (the prompt and what was generated so far), given the
    /// logits of the last position.
    public mutating func next(logits: [Float], context: [Int]) -> Int {
        var logits = logits
        penalize(&logits, context: context)
        if options.temperature == 0 { return Self.argmax(logits) }
        let inverse = 1 / options.temperature
        var candidates = self.candidates(logits, scale: inverse)
        // Softmax over the candidates, which are sorted most likely first.
        let top = candidates[0].logit
        var total: Double = 0
        for i in candidates.indices {
            let p = Double(exp(candidates[i].logit - top))
            candidates[i].logit = Float(p)
            total += p
        }
        var keep = candidates.count
        if options.topP < 1 {
            var sum: Double = 0
            for i in candidates.indices {
                sum += Double(candidates[i].logit) / total
                if sum >= Double(options.topP) { keep = i + 1; break }
            }
        }
        if options.minP > 0 {
            let floor = candidates[0].logit * options.minP
            keep = Swift.min(keep, Swift.max(1, candidates.prefix(keep).firstIndex { $0.logit < floor } ?? keep))
        }
        let kept = candidates.prefix(keep)
        let mass = kept.reduce(0.0) { $0 + Double($1.logit) }
        var target = random.nextUnit() * mass
        for c in kept {
            target -= Double(c.logit)
            if target < 0 { return c.id }
        }
        return kept[kept.endIndex - 1].id
    }

    /// The penalty of the CTRL paper on every distinct token of the recent context.
    private func penalize(_ logits: inout [Float], context: [Int]) {
        let penalty = options.repetitionPenalty
        guard penalty != 1, !context.isEmpty else { return }
        let window = options.repetitionWindow == 0 ? context[...] : context.suffix(options.repetitionWindow)
        for id in Set(window) where logits.indices.contains(id) {
            logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty
        }
    }

    /// The scaled logits that can still be drawn, most likely first (equal ones by id): the
    /// top k when k is set, kept in one pass by insertion into a sorted list of k, else every
    /// token (top-p needs them in order).
    private func candidates(_ logits: [Float], scale: Float) -> [Candidate] {
        let k = options.topK
        guard k > 0 && k < logits.count else {
            var all = logits.enumerated().map { Candidate(id: $0.offset, logit: $0.element * scale) }
            all.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.id < $1.id) }
            return all
        }
        var best: [Candidate] = []
        best.reserveCapacity(k + 1)
        for (id, value) in logits.enumerated() {
            let logit = value * scale
            // Ids come in increasing order, so an equal logit ranks after those already kept.
            if best.count == k, logit <= best[k - 1].logit { continue }
            var lo = 0, hi = best.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if best[mid].logit >= logit { lo = mid + 1 } else { hi = mid }
            }
            best.insert(Candidate(id: id, logit: logit), at: lo)
            if best.count > k { best.removeLast() }
        }
        return best
    }

    /// The first index of the largest value, as torch.argmax and llama.cpp's greedy sampler
    /// choose.
    static func argmax(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }

    private struct Candidate { var id: Int; var logit: Float }
}

/// xoshiro256** seeded through splitmix64: small, fast, and the same on every platform, which
/// the standard library's generator does not promise.
struct SeededRandom: Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// Uniform in [0, 1), from the top 53 bits.
    mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }
}
