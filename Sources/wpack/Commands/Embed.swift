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

    @Option(name: .customLong("batch-size"), help: "Texts per forward pass.")
    var batchSize = 32

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard !(json && similarity) else { throw ValidationError("--json and --similarity do not go together") }
    }

    func run() throws {
        var all = texts
        if let file {
            guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                throw CommandFailure("cannot read '\(file)' as UTF-8 text")
            }
            all += text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if all.last == "" && text.hasSuffix("\n") { all.removeLast() }
        }
        guard !all.isEmpty else { throw CommandFailure("no texts: give them as arguments or with --file") }
        let store = try WeightStore(path: model)
        let encoder = try SentenceEncoder(store: store)
        let progress = file != nil && all.count > batchSize && Terminal.stderrIsTerminal
            ? ProgressBar(label: "embedding", total: all.count, unit: "texts") : nil
        var vectors: [[Float]] = []
        var start = 0
        while start < all.count {
            let batch = Array(all[start..<min(start + batchSize, all.count)])
            vectors += try encoder.embed(batch, batchSize: batchSize)
            progress?.advance(batch.count)
            start += batchSize
        }
        progress?.finish()
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
}
