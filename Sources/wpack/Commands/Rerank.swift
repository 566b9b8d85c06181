import ArgumentParser
import Foundation
import WPack

struct Rerank: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score documents against a query with a cross-encoder .wpk and print them best first.",
        discussion: "Prints one line per document: its score and its text (or one JSON array with --json: {\"index\", \"score\", \"text\"}, plus \"scores\" per label when the model has several).")

    @Argument(help: "The cross-encoder .wpk (a ...ForSequenceClassification folder, packed).")
    var model: String

    @Option(help: "The query.")
    var query: String

    @Argument(help: "Documents to score.")
    var documents: [String] = []

    @Option(help: "A file with one document per line (added after the documents given as arguments).")
    var file: String?

    @Flag(help: "Print one JSON array, best first.")
    var json = false

    @Option(name: .customLong("batch-size"), help: "Pairs per forward pass.")
    var batchSize = 32

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        var all = documents
        if let file { all += try Embed.lines(of: file) }
        guard !all.isEmpty else { throw CommandFailure("no documents: give them as arguments or with --file") }
        let store = try WeightStore(path: model)
        let encoder = try CrossEncoder(store: store)
        let scores = try encoder.scores(all.map { (query, $0) }, batchSize: batchSize)
        try store.checkUnchanged()
        let order = scores.indices.sorted { scores[$0][0] != scores[$1][0] ? scores[$0][0] > scores[$1][0] : $0 < $1 }
        if json {
            let rows: [[String: Any]] = order.map { i in
                var row: [String: Any] = ["index": i, "score": Double(scores[i][0]), "text": all[i]]
                if encoder.labels.count > 1 {
                    row["scores"] = Dictionary(uniqueKeysWithValues: zip(encoder.labels, scores[i].map(Double.init)))
                }
                return row
            }
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for i in order { print(String(format: "%9.5f  ", scores[i][0]) + all[i]) }
        }
    }
}
