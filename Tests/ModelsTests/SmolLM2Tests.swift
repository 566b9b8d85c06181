import Foundation
import LazyTensor
import Testing
import WeightStore
@testable import Models

/// The real SmolLM2-135M-Instruct GGUF (Q4_1 and Q8_0 blocks, run in place) against
/// transformers loading the same file and dequantizing it to float32
/// (tools/fixtures/make_decoder_fixtures.py wrote Tests/Fixtures/smollm2). Skipped, visibly,
/// where the model is absent (tools/fetch-smollm2 fetches it).
enum SmolLM2Store {
    static let gguf = Fixtures.repository.appendingPathComponent(".cache/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static var available: Bool { FileManager.default.fileExists(atPath: gguf) }
    static let folder = TemporaryFolder()
    /// Packed once; each test opens its own decoder. (A decoder kept in a lazily initialised
    /// static is reported by LeakSanitizer at exit: its tokenizer's arrays are reachable only
    /// through the global's indirect payloads.)
    static let packed: String? = {
        guard available else { return nil }
        let path = folder.file("smollm2.wpk")
        try! pack([gguf], to: path)
        return path
    }()
    static var model: TextDecoder? {
        get throws { try packed.map { try TextDecoder(store: WeightStore(path: $0)) } }
    }
}

@Suite(.enabled(if: SmolLM2Store.available, "SmolLM2 GGUF absent: run tools/fetch-smollm2"))
struct SmolLM2Tests {
    @Test func tokenizerGivesTransformersIdsOnTheCorpus() throws {
        let tokenizer = try #require(try SmolLM2Store.model).tokenizer
        let expected = Fixtures.json("smollm2/tokenizer_ids.json")
        let rows = expected["rows"]!.array!
        #expect(rows.count == 2100)
        var mismatches: [String] = []
        for row in rows where tokenizer.encode(row["text"]!.string!).ids != row["ids"]!.ints {
            mismatches.append(row["text"]!.string!.debugDescription)
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(rows.count) differ, first: \(mismatches.prefix(5))")
        for row in expected["decoded"]!.array! {
            #expect(tokenizer.decode(row["ids"]!.ints) == row["text"]!.string!)
        }
    }

    /// Prompts with stored logits run step by step through a session, checking the logits;
    /// the others run through TextGenerator (chat ones from the model's own template), greedy,
    /// without stopping at the end-of-sequence token as the reference did not.
    @Test func greedyContinuationsAndLogitsEqualTransformers() throws {
        let model = try #require(try SmolLM2Store.model)
        let generator = TextGenerator(model: model)
        let reference = Fixtures.json("smollm2/prompts.json")
        let steps = reference["steps"]!.int!
        for prompt in reference["prompts"]!.array! {
            let text = prompt["text"]!.string!
            let files = prompt["logits"]?.array?.map { $0.string! } ?? []
            let ids: [Int]
            if let messages = prompt["messages"]?.array {
                let chat = try generator.chatPrompt(messages.map { ChatMessage(role: $0["role"]!.string!, content: $0["content"]!.string!) })
                #expect(chat.text == text)
                ids = chat.ids
            } else {
                ids = generator.prompt(text).ids
            }
            #expect(ids == prompt["ids"]!.ints, "\(text.debugDescription)")
            var generated: [Int] = []
            if files.isEmpty {
                let options = GenerationOptions(maxTokens: steps, stopAtEndOfSequence: false)
                let result = try generator.generate(prompt: TextGenerator.Prompt(ids: ids, text: text), options: options)
                generated = result.ids
                #expect(result.stopReason == .maxTokens)
                #expect(result.promptTokens == ids.count)
            } else {
                let session = model.makeSession(capacity: ids.count + steps)
                var logits = try session.logits(after: ids)
                try expectClose(logits, files[0])
                for step in 0..<steps {
                    let next = logits.indices.max { logits[$0] < logits[$1] }!
                    generated.append(next)
                    if step < steps - 1 { logits = try session.logits(after: [next]) }
                }
                try expectClose(logits, files[1])
            }
            #expect(generated == prompt["generated"]!.ints, "\(text.debugDescription): \(model.tokenizer.decode(generated, skipSpecialTokens: false).debugDescription)")
        }
    }

    @Test func generationStopsAtTheEndOfTheTurn() throws {
        let model = try #require(try SmolLM2Store.model)
        let generator = TextGenerator(model: model)
        let prompt = try generator.chatPrompt([ChatMessage(role: "user", content: "What is the capital of France?")])
        var streamed = ""
        var last: GeneratedToken? = nil
        let result = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 16)) {
            streamed += $0.text
            last = $0
        }
        #expect(result.text == "The capital of France is Paris.")
        #expect(streamed == result.text)
        #expect(result.stopReason == .endOfSequence)
        #expect(last?.ends == .endOfSequence && last?.id == model.tokenizer.id(of: "<|im_end|>"))
        #expect(model.tokenizer.decode(result.ids) == result.text)
    }

    @Test func stopStringsCutTheTextAndTheStreamAgrees() async throws {
        let model = try #require(try SmolLM2Store.model)
        let generator = TextGenerator(model: model)
        let prompt = generator.prompt("The capital of France is")
        let options = GenerationOptions(maxTokens: 12, stopStrings: ["\n\nThe", "never"])
        let result = try generator.generate(prompt: prompt, options: options)
        #expect(result.text == " Paris.")
        #expect(result.stopReason == .stopString)
        var streamed = ""
        var ends: [StopReason?] = []
        for try await token in try generator.tokens(prompt: prompt, options: options) {
            streamed += token.text
            ends.append(token.ends)
        }
        #expect(streamed == result.text)
        #expect(ends.count == result.ids.count && ends.last == .stopString && ends.dropLast().allSatisfy { $0 == nil })

        let short = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 3))
        #expect(short.ids.count == 3 && short.stopReason == .maxTokens)
        #expect(short.text == model.tokenizer.decode(short.ids))
    }

    @Test func seededSamplingRepeats() throws {
        let model = try #require(try SmolLM2Store.model)
        let generator = TextGenerator(model: model)
        let prompt = generator.prompt("Once upon a time")
        let sampling = SamplingOptions(temperature: 0.9, topK: 40, topP: 0.95, seed: 1234)
        let a = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 6, sampling: sampling))
        let b = try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 6, sampling: sampling))
        #expect(a.ids == b.ids && a.ids.count == 6)
    }

    /// An emoji is four bytes, which byte-level BPE spreads over several tokens: no chunk
    /// holds half of it, and the chunks add up to the decoded text.
    @Test func streamingNeverSplitsACharacter() throws {
        let tokenizer = try #require(try SmolLM2Store.model).tokenizer
        let text = "Tea 🍵 or coffee ☕? Ünïcödé, 漢字 and 🙂🙂."
        let ids = tokenizer.encode(text).ids
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var chunks = ids.map { detokenizer.append($0) }
        chunks.append(detokenizer.finish())
        #expect(ids.count > text.count / 2)
        #expect(chunks.allSatisfy { !$0.unicodeScalars.contains("\u{FFFD}") })
        #expect(chunks.joined() == text)
        #expect(chunks.contains(""))
    }

    @Test func badRequestsAreOneLine() throws {
        let model = try #require(try SmolLM2Store.model)
        let generator = TextGenerator(model: model)
        let prompt = generator.prompt("Hi")
        #expect(throws: ModelError.badInput("max tokens must be 1 or more, not 0")) {
            try generator.generate(prompt: prompt, options: GenerationOptions(maxTokens: 0))
        }
        #expect(throws: ModelError.badInput("the prompt has no tokens")) {
            try generator.generate(prompt: TextGenerator.Prompt(ids: [], text: ""))
        }
        #expect(throws: ModelError.badInput("a stop string cannot be empty")) {
            try generator.generate(prompt: prompt, options: GenerationOptions(stopStrings: [""]))
        }
        let long = TextGenerator.Prompt(ids: Array(repeating: 1, count: 8192), text: "")
        #expect(throws: ModelError.badInput("the prompt's 8192 tokens leave no room in the model's context of 8192")) {
            try generator.generate(prompt: long)
        }
    }

    /// Within 1e-3 of the reference's range (max - min) at every position of the vocabulary.
    func expectClose(_ got: [Float], _ file: String) throws {
        let expected = try ArrayFile.readNpy(path: Fixtures.path("smollm2/" + file)).scalars
        #expect(got.count == expected.count)
        let range = expected.max()! - expected.min()!
        let worst = zip(got, expected).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-3 * range, "\(file): worst difference \(worst) for a range of \(range)")
    }
}
