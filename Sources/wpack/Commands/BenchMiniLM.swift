import ArgumentParser
import Foundation
import WPack

/// Sentence-encoder forward passes on synthetic token ids of a fixed shape (every row full
/// length, so the work is exactly batch × tokens), timed in this process, with the process's
/// peak resident memory. tools/bench/compare runs the peers on the same shapes.
struct BenchMiniLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minilm",
        abstract: "Time a sentence encoder (.wpk) at a fixed batch and sequence length.")

    @Argument(help: "The model .wpk.")
    var model: String

    @Option(help: "Sentences per forward pass.")
    var batch = 32

    @Option(help: "Tokens per sentence, [CLS] and [SEP] included.")
    var tokens = 128

    @OptionGroup var report: BenchReport

    @Flag(help: "Print the plan of one forward pass (kernels, their inputs and outputs) instead of timing.")
    var explain = false

    @Flag(help: "After reporting, keep the model mapped until standard input closes (to measure shared memory).")
    var hold = false

    func validate() throws {
        guard batch >= 1, tokens >= 2 else { throw ValidationError("--batch must be positive and --tokens at least 2") }
    }

    func run() throws {
        let store = try WeightStore(path: model)
        let encoder = try SentenceEncoder(store: store)
        guard tokens <= encoder.config.maxTokens else { throw CommandFailure("--tokens exceeds the model's \(encoder.config.maxTokens) positions") }
        // The special tokens the model puts around a text ([CLS] ... [SEP], <s> ... </s>).
        let ends = encoder.tokenizer.encode("").ids
        guard ends.count == 2 else { throw CommandFailure("this model's tokenizer does not frame a text with two special tokens") }
        // Deterministic ids from the ordinary vocabulary range (past the special tokens).
        var state: UInt64 = 12345
        let rows: [[Int]] = (0..<batch).map { _ in
            [ends[0]] + (0..<(tokens - 2)).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return 2000 + Int((state >> 33) % 20000)
            } + [ends[1]]
        }
        if explain {
            print(encoder.pooled(rows).explain())
            return
        }
        // As `wpack embed` runs a batch: planned once per batch shape, then replayed. The warm-up
        // pages in the weights, fills the block pool and plans.
        _ = encoder.vectors(rows)
        var stats = Stats()
        let median = Timing.medianMilliseconds(repeats: report.repeats(default: 5)) { stats = Stats.measure { _ = encoder.vectors(rows) }.1 }
        let peakRSS = Timing.peakResidentBytes()
        let row: [String: Any] = [
            "batch": batch, "tokens": tokens, "median_ms": median, "sentences_per_s": Double(batch) / median * 1000,
            "peak_rss_bytes": peakRSS, "kernels": stats.kernels, "bytes_allocated": stats.bytesAllocated,
            "peak_bytes": stats.peakBytes, "bytes_copied": stats.bytesCopied,
        ]
        try report.emit(row) {
            "batch \(batch) x \(tokens) tokens: \(String(format: "%.2f", median)) ms, "
                + "\(String(format: "%.1f", Double(batch) / median * 1000)) sentences/s, peak RSS \(Terminal.formatBytes(peakRSS)), "
                + "\(stats.kernels) kernels, activations \(Terminal.formatBytes(stats.peakBytes)) at peak"
        }
        if hold { withExtendedLifetime(encoder) { Timing.holdUntilStdinCloses() } }
    }
}
