/// How the next token is chosen from a step's logits. The default is greedy (temperature 0):
/// the most likely token, so that a run is the reference implementations' greedy run.
///
/// The steps apply in transformers' order: repetition penalty on the raw logits, temperature,
/// then top-k, top-p and min-p on the scaled distribution, then a draw from what is left.
/// (llama.cpp scales by the temperature last, so the same options keep slightly different
/// sets there; its random stream is its own either way.)
public struct SamplingOptions: Sendable, Equatable {
    /// 0 is greedy; above 0 the logits are divided by it before the softmax.
    public var temperature: Float = 0
    /// Keep only the k most likely tokens (0: no limit).
    public var topK: Int = 0
    /// Keep the smallest set of most likely tokens whose probabilities reach p (1: all).
    public var topP: Float = 1
    /// Drop tokens less likely than min-p times the most likely one (0: none).
    public var minP: Float = 0
    /// Divides positive logits and multiplies negative ones of tokens already in the context
    /// (the CTRL paper's rule, as transformers and llama.cpp apply it); 1 is off.
    public var repetitionPenalty: Float = 1
    /// How many of the most recent context tokens the penalty looks at (0: all of them).
    public var repetitionWindow: Int = 64
    /// The random stream's seed: the same seed, prompt and options give the same tokens.
    public var seed: UInt64 = 0

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0,
                repetitionPenalty: Float = 1, repetitionWindow: Int = 64, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.repetitionWindow = repetitionWindow
        self.seed = seed
    }

    /// Every value in its range, or a one-line reason.
    public func validated() throws -> SamplingOptions {
        func bad(_ reason: String) -> ModelError { .badInput("sampling: \(reason)") }
        guard temperature.isFinite, temperature >= 0 else { throw bad("temperature must be 0 or more, not \(temperature)") }
        guard topK >= 0 else { throw bad("top-k must be 0 (off) or more, not \(topK)") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw bad("top-p must be in (0, 1], not \(topP)") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw bad("min-p must be in [0, 1], not \(minP)") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw bad("the repetition penalty must be above 0, not \(repetitionPenalty)")
        }
        guard repetitionWindow >= 0 else { throw bad("the repetition window must be 0 (all) or more, not \(repetitionWindow)") }
        return self
    }
}
