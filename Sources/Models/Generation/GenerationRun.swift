/// One generation's state, advanced a token at a time by `TextGenerator` and by the
/// AsyncSequence. Its session is made at the first step, so a copy that has not started
/// runs on its own caches.
struct GenerationRun {
    let model: TextDecoder
    let prompt: [Int]
    let options: GenerationOptions
    let capacity: Int
    private var session: DecoderSession?
    private var sampler: Sampler
    private var detokenizer: StreamingDetokenizer
    private var context: [Int]
    private var generated: [Int] = []
    /// Every decoded character so far (as scalars, so that cutting and handing out are
    /// index arithmetic), and how many of them have been handed out.
    private var text: [Unicode.Scalar] = []
    private var emitted = 0
    private var stopReason: StopReason?
    private var last = 0
    private var prefillSeconds = 0.0
    private var decodeSeconds = 0.0
    private var decodeSteps = 0
    private let stops: [[Unicode.Scalar]]

    init(model: TextDecoder, prompt: [Int], options: GenerationOptions) throws {
        guard !prompt.isEmpty else { throw ModelError.badInput("the prompt has no tokens") }
        guard options.maxTokens >= 1 else { throw ModelError.badInput("max tokens must be 1 or more, not \(options.maxTokens)") }
        if options.stopStrings.contains(where: \.isEmpty) { throw ModelError.badInput("a stop string cannot be empty") }
        let context = model.maxPositions
        guard prompt.count < context else {
            throw ModelError.badInput("the prompt's \(prompt.count) tokens leave no room in the model's context of \(context)")
        }
        self.model = model
        self.prompt = prompt
        self.options = options
        capacity = Swift.min(prompt.count + options.maxTokens, context)
        sampler = try Sampler(options.sampling)
        detokenizer = StreamingDetokenizer(tokenizer: model.tokenizer)
        self.context = prompt
        stops = options.stopStrings.map { Array($0.unicodeScalars) }
    }

    var result: Generation {
        var s = ""
        s.unicodeScalars.append(contentsOf: text)
        return Generation(ids: generated, text: s, promptTokens: prompt.count, stopReason: stopReason ?? .maxTokens,
                          prefillSeconds: prefillSeconds, decodeSeconds: decodeSeconds, decodeSteps: decodeSteps)
    }

    mutating func step() throws -> GeneratedToken? {
        guard stopReason == nil else { return nil }
        let logits: [Float]
        let start = ContinuousClock.now
        if let session {
            logits = try session.logits(after: [last])
            decodeSeconds += Self.seconds(since: start)
            decodeSteps += 1
        } else {
            let s = model.makeSession(capacity: capacity)
            session = s
            logits = try s.logits(after: prompt)
            prefillSeconds = Self.seconds(since: start)
        }
        let id = sampler.next(logits: logits, context: context)
        context.append(id)
        last = id
        var ends: StopReason? = nil
        var chunk: String
        if options.stopAtEndOfSequence && model.endOfSequenceIDs.contains(id) {
            chunk = detokenizer.finish()
            ends = .endOfSequence
        } else {
            generated.append(id)
            chunk = detokenizer.append(id)
            if generated.count == options.maxTokens { ends = .maxTokens }
            else if session!.length >= capacity { ends = .contextFull }
            if ends != nil { chunk += detokenizer.finish() }
        }
        text.append(contentsOf: chunk.unicodeScalars)
        if let cut = stopCut() {
            text.removeSubrange(cut...)
            ends = .stopString
        }
        stopReason = ends
        // While the generation goes on, text that could be the start of a stop string waits.
        return GeneratedToken(id: id, text: release(upTo: text.count - (ends == nil ? heldBack() : 0)), ends: ends)
    }

    /// Where the first stop string starts, in scalars. A match can only be new if it ends in
    /// what was not handed out, so the search starts a stop string's length before that.
    private func stopCut() -> Int? {
        var best: Int? = nil
        for needle in stops {
            var i = Swift.max(0, emitted - needle.count + 1)
            while i + needle.count <= text.count {
                if text[i..<(i + needle.count)].elementsEqual(needle) {
                    best = Swift.min(best ?? i, i)
                    break
                }
                i += 1
            }
        }
        return best
    }

    /// How many scalars at the end could be the start of a stop string.
    private func heldBack() -> Int {
        var longest = 0
        for needle in stops {
            for n in stride(from: Swift.min(needle.count - 1, text.count), to: longest, by: -1)
            where text.suffix(n).elementsEqual(needle.prefix(n)) {
                longest = n
                break
            }
        }
        return longest
    }

    /// The text between what was handed out and `end`.
    private mutating func release(upTo end: Int) -> String {
        guard end > emitted else { return "" }
        var out = ""
        out.unicodeScalars.append(contentsOf: text[emitted..<end])
        emitted = end
        return out
    }

    private static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
