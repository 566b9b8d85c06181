import ArgumentParser
import Foundation
import WPack

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed texts with a sentence-encoder .wpk (e.g. all-MiniLM-L6-v2 packed from its model folder).",
        discussion: "Prints one line per text (its vector, space-separated), one JSON array with --json, or a cosine similarity matrix with --similarity.")

    @Argument(help: "The model .wpk.")
    var model: String

    @Argument(help: "Texts to embed.")
    var texts: [String] = []

    @Option(help: "A file with one text per line (added after the texts given as arguments).")
    var file: String?

    @Flag(help: "Print one JSON array of vectors.")
    var json = false

    @Flag(help: "Print the cosine similarity matrix of the texts instead of the vectors.")
    var similarity = false

    @Option(name: .customLong("batch-size"), help: "Texts per forward pass, at most.")
    var batchSize = 32

    @Option(name: .customLong("max-batch-tokens"), help: "Padded tokens per forward pass, at most (texts are sorted by length first).")
    var maxBatchTokens = 16384

    @Option(name: .customLong("prompt-name"), help: "A prompt the model defines (config_sentence_transformers.json), put before every text.")
    var promptName: String?

    @Option(help: "A prompt text put before every text.")
    var prompt: String?

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard maxBatchTokens >= 1 else { throw ValidationError("--max-batch-tokens must be at least 1") }
        guard !(json && similarity) else { throw ValidationError("--json and --similarity do not go together") }
        guard promptName == nil || prompt == nil else { throw ValidationError("--prompt-name and --prompt do not go together") }
    }

    func run() throws {
        // The model first: a bad model fails before a long text file is read.
        let store = try WeightStore(path: model)
        let encoder = try SentenceEncoder(store: store)
        var all = texts
        if let file { all += try Self.lines(of: file) }
        guard !all.isEmpty else { throw CommandFailure("no texts: give them as arguments or with --file") }
        let promptText = try promptName.map { try encoder.prompt(named: $0) } ?? prompt
        let progress = file != nil && all.count > batchSize && Terminal.stderrIsTerminal
            ? ProgressBar(label: "embedding", total: all.count, unit: "texts") : nil
        // All texts in one call, so that they are sorted by length across the whole input.
        let vectors = try encoder.embed(all, batchSize: batchSize, maxBatchTokens: maxBatchTokens, prompt: promptText, progress: { progress?.advance($0) })
        progress?.finish()
        // The vectors came from views of the mapping: if the file changed under them, say so
        // instead of printing numbers read from other bytes.
        try store.checkUnchanged()
        if similarity {
            let width = min(40, all.map(\.count).max() ?? 0)
            for (i, text) in all.enumerated() {
                let row = vectors.map { v in String(format: "%6.3f", zip(vectors[i], v).reduce(0) { $0 + $1.0 * $1.1 }) }
                let label = text.count > width ? String(text.prefix(width - 1)) + "…" : text.padding(toLength: width, withPad: " ", startingAt: 0)
                print("\(label)  \(row.joined(separator: " "))")
            }
        } else if json {
            let data = try JSONSerialization.data(withJSONObject: vectors.map { $0.map(Double.init) })
            print(String(decoding: data, as: UTF8.self))
        } else {
            for v in vectors { print(v.map { String($0) }.joined(separator: " ")) }
        }
    }

    /// The texts of a file, one a line: lines end at \n or \r\n (a final line ending adds no
    /// text). An empty file, or one that is not UTF-8, is an error.
    static func lines(of path: String) throws -> [String] {
        // Read to the end rather than by size, so a pipe or FIFO (--file /dev/stdin) works.
        guard let handle = FileHandle(forReadingAtPath: path) else { throw CommandFailure("cannot open '\(path)'") }
        defer { try? handle.close() }
        let data: Data
        do { data = try handle.readToEnd() ?? Data() } catch { throw CommandFailure("cannot read '\(path)': \(error.localizedDescription)") }
        guard let text = String(data: data, encoding: .utf8) else { throw CommandFailure("'\(path)' is not UTF-8 text") }
        guard !text.isEmpty else { throw CommandFailure("'\(path)' is empty: it holds no text") }
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var s = String.UnicodeScalarView(line)
            if s.last == "\r" { s.removeLast() }
            return String(s)
        }
        if text.unicodeScalars.last == "\n" { lines.removeLast() }
        guard !lines.isEmpty else { throw CommandFailure("'\(path)' holds no text") }
        return lines
    }
}
