import ArgumentParser
import Foundation

/// The options every `wpack bench` subcommand shares, and the one way they print: a line for
/// people, or one JSON object for tools/bench/compare.
struct BenchReport: ParsableArguments {
    @Option(help: "Timed runs (the median is reported).")
    var repeats = 9

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        guard repeats > 0 else { throw ValidationError("--repeats must be positive") }
    }

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
