import ArgumentParser
import Foundation
import WPack

/// The lazy engine's standard workloads, timed in this process. tools/bench/compare runs the
/// peers on the same workloads in the same run and prints the ratios.
struct BenchOps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Time a fused elementwise chain over 16M floats, softmax and layerNorm over [4096, 384].")

    @OptionGroup var report: BenchReport

    struct Result { let name: String; let medianMs: Double; let stats: Stats }

    func run() throws {
        let x = Tensor.randn(shape: [4096, 4096], seed: 1)
        let b = Tensor.randn(shape: [4096], seed: 2)
        let rows = Tensor.randn(shape: [4096, 384], seed: 3)
        let w = Tensor.randn(shape: [384], seed: 4), bias = Tensor.randn(shape: [384], seed: 5)
        let workloads: [(String, () -> Tensor)] = [
            // 5 elementwise ops, one of them a broadcast: add(b), mul, sub, relu, mul.
            ("fused chain, 5 ops + broadcast, [4096, 4096]", { (((x + b) * 2 - 1).relu() * x) }),
            ("softmax [4096, 384] last axis", { rows.softmax(axis: -1) }),
            ("layerNorm [4096, 384] with weight and bias", { rows.layerNorm(axis: -1, eps: 1e-5, weight: w, bias: bias) }),
        ]
        var results: [Result] = []
        for (name, make) in workloads {
            _ = make().materialized()  // warm up: page in inputs, first-touch the allocator
            var last = Stats()
            let median = Timing.medianMilliseconds(repeats: report.repeats(default: 10)) { last = Stats.measure { _ = make().materialized() }.1 }
            results.append(Result(name: name, medianMs: median, stats: last))
        }
        let table: [[String: Any]] = results.map {
            ["name": $0.name, "median_ms": $0.medianMs, "bytes_allocated": $0.stats.bytesAllocated,
             "bytes_copied": $0.stats.bytesCopied, "kernels": $0.stats.kernels, "peak_bytes": $0.stats.peakBytes]
        }
        try report.emit(["wpack": table]) {
            results.map { r in
                "\(r.name): \(String(format: "%.2f", r.medianMs)) ms, \(r.stats.kernels) kernel(s), "
                    + "\(Terminal.formatBytes(r.stats.bytesAllocated)) allocated, \(r.stats.bytesCopied) B copied"
            }.joined(separator: "\n")
        }
    }
}
