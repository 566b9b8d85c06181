import ArgumentParser
import Foundation
import WPack

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure wpack's own costs (tools/bench/compare runs the peers beside them).",
        subcommands: [OpenTime.self, BenchOps.self, BenchContractions.self, BenchMiniLM.self, BenchRun.self, BenchTokenize.self,
                      BenchDecode.self, BenchPeak.self, BenchGenerate.self])
}

/// Time from nothing to the first tensor's first float: open, map, validate the header, take
/// a view, read one element. Run many times in one process; the file's pages stay cached, so
/// this is the cost a server pays per load, not the disk's.
struct OpenTime: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open",
        abstract: "Time opening .wpk files until their first tensor can be read.")

    @Argument(help: "The .wpk files to open.")
    var files: [String]

    @OptionGroup var report: BenchReport

    func run() throws {
        let repeats = report.repeats(default: 200)  // opens per file
        var rows: [[String: Any]] = []
        for file in files {
            var samples: [Double] = []
            var sink: Float = 0
            var info: (Int, Int) = (0, 0)
            for _ in 0..<repeats {
                let start = DispatchTime.now().uptimeNanoseconds
                let store = try WeightStore(path: file)
                if let first = store.infos.first(where: \.isMappable) {
                    let view = try store.tensor(first.name)
                    if view.scalarCount > 0 { sink += view.baseAddress.pointee }
                }
                samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000)
                info = (store.file.bytes.count, store.infos.count)
            }
            samples.sort()
            let row: [String: Any] = [
                "file": file, "bytes": info.0, "tensors": info.1, "repeats": repeats,
                "median_us": samples[samples.count / 2], "min_us": samples[0],
                "p90_us": samples[min(samples.count - 1, samples.count * 9 / 10)],
            ]
            rows.append(row)
            if !report.json {  // one line per file as it is measured
                let f = { (key: String) in String(format: "%.1f", row[key] as! Double) }
                print("\(file): \(Terminal.formatBytes(info.0)), \(info.1) tensors: open to first float median "
                      + "\(f("median_us")) us (min \(f("min_us")), p90 \(f("p90_us"))) over \(repeats) opens")
            }
            if sink.isNaN { print("") }  // keeps the read from being optimised away
        }
        if report.json { try BenchReport.emit(rows, json: true) { "" } }
    }
}
