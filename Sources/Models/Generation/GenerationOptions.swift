/// What a generation runs until, and how it chooses tokens.
public struct GenerationOptions: Sendable, Equatable {
    /// Generated tokens at most (end-of-sequence and stop strings can end it earlier).
    public var maxTokens: Int = 256
    public var sampling = SamplingOptions()
    /// Texts that end the generation where they first appear; they are not part of the text.
    public var stopStrings: [String] = []
    /// Whether the model's end-of-sequence and end-of-turn tokens end it (they are never part
    /// of the ids or text returned).
    public var stopAtEndOfSequence = true

    public init(maxTokens: Int = 256, sampling: SamplingOptions = SamplingOptions(), stopStrings: [String] = [],
                stopAtEndOfSequence: Bool = true) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.stopAtEndOfSequence = stopAtEndOfSequence
    }
}

/// One generated token and the text it completes (empty while a character is still split
/// across tokens, or while the text could be the start of a stop string). The last token of
/// a generation says why it is the last; an end-of-sequence token appears only there, with
/// whatever text was still held back.
public struct GeneratedToken: Sendable, Equatable {
    public let id: Int
    public let text: String
    public let ends: StopReason?
}

/// Why a generation ended.
public enum StopReason: String, Sendable {
    case endOfSequence = "eos"
    case stopString = "stop"
    case maxTokens = "length"
    /// The session's positions (the model's context) ran out.
    case contextFull = "context"
}

/// A finished generation.
public struct Generation: Sendable {
    /// The generated ids, without the end-of-sequence token that ended them.
    public let ids: [Int]
    /// Their text, up to (not including) a stop string.
    public let text: String
    public let promptTokens: Int
    public let stopReason: StopReason
    /// Seconds spent in the prompt's forward pass, and in the decode steps after it (one per
    /// token chosen after the first, the end-of-sequence token included).
    public let prefillSeconds: Double
    public let decodeSeconds: Double
    public let decodeSteps: Int

    public var prefillTokensPerSecond: Double { Double(promptTokens) / Swift.max(prefillSeconds, 1e-9) }
    /// 0 when no decode step ran (one token, from the prefill).
    public var decodeTokensPerSecond: Double { decodeSteps == 0 ? 0 : Double(decodeSteps) / Swift.max(decodeSeconds, 1e-9) }
}
