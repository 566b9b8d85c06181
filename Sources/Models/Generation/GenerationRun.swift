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
    /// Every decoded character so far, and how many of them (in scalars) have been handed out.
    private var text = ""
    private var emitted = 0
    private var stopReason: StopReason?
    private var last = 0
    private var prefillSeconds = 0.0
    private var decodeSeconds = 0.0

    init(model: TextDecoder, prompt: [Int], options: GenerationOptions) throws {
        guard !prompt.isEmpty else { throw ModelError.badInput("the prompt has no tokens") }
        guard options.maxTokens >= 1 else { throw ModelError.badInput("max tokens must be 1 or more, not \(options.maxTokens)") }
        if options.stopStrings.contains(where: \.isEmpty) { throw ModelError.badInput("a stop string cannot be empty") }
        let context = model.config.contextLength
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
    }

    var result: Generation {
        Generation(ids: generated, text: text, promptTokens: prompt.count, stopReason: stopReason ?? .maxTokens,
                   prefillSeconds: prefillSeconds, decodeSeconds: decodeSeconds)
    }

    mutating func step() throws -> GeneratedToken? {
        guard stopReason == nil else { return nil }
        let logits: [Float]
        let start = ContinuousClock.now
        if let session {
            logits = try session.logits(after: [last])
            decodeSeconds += Self.seconds(since: start)
        } else {
            let s = model.makeSession(capacity: capacity)
            session = s
            logits = try s.logits(after: prompt)
            prefillSeconds = Self.seconds(since: start)
        }
        let id = sampler.next(logits: logits, context: context)
        context.append(id)
        last = id
        if options.stopAtEndOfSequence && model.endOfSequenceIDs.contains(id) {
            return finish(id: id, chunk: detokenizer.finish(), reason: .endOfSequence)
        }
        generated.append(id)
        let chunk = detokenizer.append(id)
        if generated.count == options.maxTokens {
            return finish(id: id, chunk: chunk + detokenizer.finish(), reason: .maxTokens)
        }
        if session!.length >= capacity {
            return finish(id: id, chunk: chunk + detokenizer.finish(), reason: .contextFull)
        }
        text += chunk
        if let cut = stopCut() {
            stopReason = .stopString
            return GeneratedToken(id: id, text: release(upTo: cut), ends: .stopString)
        }
        return GeneratedToken(id: id, text: release(upTo: text.unicodeScalars.count - heldBack()), ends: nil)
    }

    private mutating func finish(id: Int, chunk: String, reason: StopReason) -> GeneratedToken {
        text += chunk
        if let cut = stopCut() {
            stopReason = .stopString
            return GeneratedToken(id: id, text: release(upTo: cut), ends: .stopString)
        }
        stopReason = reason
        return GeneratedToken(id: id, text: release(upTo: text.unicodeScalars.count), ends: reason)
    }

    /// Where the first stop string starts, in scalars; the text is cut there.
    private mutating func stopCut() -> Int? {
        var best: Int? = nil
        let scalars = Array(text.unicodeScalars)
        for stop in options.stopStrings {
            let needle = Array(stop.unicodeScalars)
            // A stop string can only newly appear in the part not yet handed out (plus its own
            // length before it, where a held-back prefix may have been completed).
            var i = Swift.max(0, emitted - needle.count)
            while i + needle.count <= scalars.count {
                if scalars[i..<(i + needle.count)].elementsEqual(needle) {
                    best = Swift.min(best ?? i, i)
                    break
                }
                i += 1
            }
        }
        if let best {
            var kept = ""
            kept.unicodeScalars.append(contentsOf: scalars[..<best])
            text = kept
        }
        return best
    }

    /// How many scalars at the end could be the start of a stop string, and so wait.
    private func heldBack() -> Int {
        guard !options.stopStrings.isEmpty else { return 0 }
        let scalars = Array(text.unicodeScalars.suffix(options.stopStrings.map { $0.unicodeScalars.count }.max()!))
        var longest = 0
        for stop in options.stopStrings {
            let needle = Array(stop.unicodeScalars)
            for n in stride(from: Swift.min(needle.count - 1, scalars.count), to: longest, by: -1)
            where scalars.suffix(n).elementsEqual(needle.prefix(n)) {
                longest = n
                break
            }
        }
        return longest
    }

    /// The text between what was handed out and `end` (in scalars).
    private mutating func release(upTo end: Int) -> String {
        guard end > emitted else { return "" }
        var out = ""
        out.unicodeScalars.append(contentsOf: text.unicodeScalars.dropFirst(emitted).prefix(end - emitted))
        emitted = end
        return out
    }

    private static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
