import ArgumentParser
import Foundation
import WPack

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text with a decoder .wpk (e.g. SmolLM2-135M-Instruct packed from its GGUF).",
        discussion: """
            Streams the text to stdout as it is generated; --json prints one object at the end instead: \
            {"ids", "text", "prompt", "prompt_tokens", "generated_tokens", "stop_reason", "seed", \
            "prefill_tokens_per_second", "decode_tokens_per_second"}. Greedy (--temperature 0) unless told \
            otherwise; with a temperature, --seed makes a run repeatable (without one, a seed is chosen and \
            --json reports it). Generation ends at the model's end-of-turn token, at a --stop text, or after \
            --max-tokens.
            """)

    @Argument(help: "The model .wpk.")
    var model: String

    @Option(help: "The prompt text (with --chat, the user's message).")
    var prompt: String

    @Flag(help: "Wrap the prompt in the model's chat template, as the user's turn.")
    var chat = false

    @Option(help: "A system message before the user's (with --chat).")
    var system: String?

    @Option(name: .customLong("max-tokens"), help: "Tokens to generate, at most.")
    var maxTokens = 256

    @Option(help: "0 is greedy; higher draws more freely.")
    var temperature: Float = 0

    @Option(name: .customLong("top-k"), help: "Draw from the k most likely tokens only (0: all).")
    var topK = 0

    @Option(name: .customLong("top-p"), help: "Draw from the most likely tokens whose probabilities reach p (1: all).")
    var topP: Float = 1

    @Option(name: .customLong("min-p"), help: "Drop tokens less likely than min-p times the most likely one.")
    var minP: Float = 0

    @Option(name: .customLong("repeat-penalty"), help: "Penalty on tokens of the last 64 of the context (1: none).")
    var repeatPenalty: Float = 1

    @Option(help: "The random seed (with a temperature above 0).")
    var seed: UInt64?

    @Option(help: "A text that ends the generation (repeatable); it is not printed.")
    var stop: [String] = []

    @Flag(name: .customLong("ignore-eos"), help: "Do not stop at the end-of-sequence or end-of-turn token.")
    var ignoreEOS = false

    @Flag(help: "Print one JSON object at the end instead of streaming the text.")
    var json = false

    func validate() throws {
        guard system == nil || chat else { throw ValidationError("--system needs --chat") }
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        guard !prompt.isEmpty else { throw ValidationError("--prompt is empty") }
        guard !stop.contains("") else { throw ValidationError("--stop cannot be empty") }
    }

    func run() throws {
        let store = try WeightStore(path: model)
        let decoder = try TextDecoder(store: store)
        let generator = TextGenerator(model: decoder)
        let chosenSeed = seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        let sampling = SamplingOptions(temperature: temperature, topK: topK, topP: topP, minP: minP,
                                       repetitionPenalty: repeatPenalty, seed: chosenSeed)
        let input: TextGenerator.Prompt
        if chat {
            var messages: [ChatMessage] = []
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: prompt))
            input = try generator.chatPrompt(messages)
        } else {
            input = generator.prompt(prompt)
        }
        let options = GenerationOptions(maxTokens: maxTokens, sampling: sampling, stopStrings: stop, stopAtEndOfSequence: !ignoreEOS)
        let result = try generator.generate(prompt: input, options: options) { token in
            guard !json, !token.text.isEmpty else { return }
            print(token.text, terminator: "")
            fflush(nil)  // each piece as it comes: stdout is fully buffered when piped
        }
        // The weights were views of the mapping: a file changed under them is an error, not
        // text computed from other bytes.
        try store.checkUnchanged()
        if json {
            let object: [String: Any] = [
                "ids": result.ids, "text": result.text, "prompt": input.text, "prompt_tokens": result.promptTokens,
                "generated_tokens": result.ids.count, "stop_reason": result.stopReason.rawValue, "seed": chosenSeed,
                "prefill_tokens_per_second": result.prefillTokensPerSecond, "decode_tokens_per_second": result.decodeTokensPerSecond,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("")
        }
    }
}
