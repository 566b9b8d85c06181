import ArgumentParser
import Foundation

/// The options every `wpack bench` subcommand shares, and the one way they print: a line for
/// people, or one JSON object for tools/bench/compare.
struct BenchReport: ParsableArguments {
    @Option(help: "Timed runs (the median is reported); each subcommand has its own default.")
    var repeats: Int?

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        if let repeats, repeats <= 0 { throw ValidationError("--repeats must be positive") }
    }

    func repeats(default fallback: Int) -> Int { repeats ?? fallback }

    func emit(_ value: Any, text: () -> String) throws {
        try Self.emit(value, json: json, text: text)
    }

    static func emit(_ value: Any, json: Bool, text: () -> String) throws {
        if json {
            let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(text())
        }
    }
}
