import ArgumentParser
import Foundation
import WPack

/// Prefill and decode speed of a decoder .wpk: the prompt in one batched forward pass, then
/// `--tokens` greedy decode steps that do not stop at end-of-sequence, so every run does the
/// same work. One untimed run first (page faults of the mapping, plans built); then the median
/// of the timed runs. tools/bench/compare runs llama.cpp on the same GGUF beside it.
struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Time prefill and decode of a decoder .wpk (prefill_tokens_per_second, decode_tokens_per_second).")

    @Argument(help: "The model .wpk.")
    var model: String

    @Option(help: "The prompt text (tokenized with the model's tokenizer; its tokens are the prefill).")
    var prompt: String

    @Option(help: "Tokens to generate after the prompt.")
    var tokens = 64

    @OptionGroup var report: BenchReport

    @Flag(help: "After the report, keep the model mapped until stdin closes (for shared-memory measurements).")
    var hold = false

    func validate() throws {
        guard tokens >= 2 else { throw ValidationError("--tokens must be at least 2 (the first comes from the prefill)") }
        guard !prompt.isEmpty else { throw ValidationError("--prompt is empty") }
    }

    func run() throws {
        let store = try WeightStore(path: model)
        let generator = TextGenerator(model: try TextDecoder(store: store))
        let input = generator.prompt(prompt)
        let options = GenerationOptions(maxTokens: tokens, stopAtEndOfSequence: false)
        _ = try generator.generate(prompt: input, options: options)
        var prefill: [Double] = [], decode: [Double] = []
        for _ in 0..<report.repeats(default: 3) {
            let r = try generator.generate(prompt: input, options: options)
            prefill.append(r.prefillTokensPerSecond)
            decode.append(r.decodeTokensPerSecond)
        }
        try store.checkUnchanged()
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let row: [String: Any] = [
            "model": model, "prompt_tokens": input.ids.count, "generated_tokens": tokens, "repeats": prefill.count,
            "prefill_tokens_per_second": median(prefill), "decode_tokens_per_second": median(decode),
            "threads": CPU.workers, "peak_rss_bytes": Timing.peakResidentBytes(),
        ]
        try report.emit(row) {
            String(format: "%@: prefill %d tokens at %.1f tokens/s, decode %d tokens at %.1f tokens/s (median of %d), peak RSS %@",
                   model, input.ids.count, median(prefill), tokens, median(decode), prefill.count,
                   Terminal.formatBytes(Timing.peakResidentBytes()))
        }
        if hold { withExtendedLifetime(generator) { Timing.holdUntilStdinCloses() } }
    }
}
