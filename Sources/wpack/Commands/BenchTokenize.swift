import ArgumentParser
import Foundation
import WPack

/// A model's tokenizer over a file of texts, one thread, in this process. tools/bench/compare
/// runs the tokenizers library (one thread) on the same tokenizer.json and texts.
struct BenchTokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Time a model's tokenizer over a file of texts (one a line).")

    @Argument(help: "The model .wpk, or a tokenizer.json.")
    var model: String

    @Option(help: "The texts, one a line.")
    var file: String

    @OptionGroup var report: BenchReport

    func run() throws {
        let tokenizer: Tokenizer
        if model.hasSuffix(".json") {
            guard let data = FileManager.default.contents(atPath: model), let text = String(data: data, encoding: .utf8) else {
                throw CommandFailure("cannot read '\(model)' as UTF-8 text")
            }
            tokenizer = try Tokenizer(tokenizerJSON: text)
        } else {
            tokenizer = try Tokenizer(store: try WeightStore(path: model))
        }
        let texts = try Embed.lines(of: file)
        var tokens = 0
        for t in texts { tokens += tokenizer.encode(t).count }  // warm up
        let median = Timing.medianMilliseconds(repeats: report.repeats(default: 5)) {
            var n = 0
            for t in texts { n += tokenizer.encode(t).count }
            tokens = n
        }
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        let row: [String: Any] = [
            "texts": texts.count, "tokens": tokens, "bytes": bytes, "median_ms": median,
            "tokens_per_s": Double(tokens) / median * 1000, "mb_per_s": Double(bytes) / median / 1000,
        ]
        try report.emit(row) {
            "\(texts.count) texts, \(tokens) tokens: \(String(format: "%.2f", median)) ms, "
                + "\(String(format: "%.0f", Double(tokens) / median * 1000)) tokens/s, \(String(format: "%.1f", Double(bytes) / median / 1000)) MB/s"
        }
    }
}
