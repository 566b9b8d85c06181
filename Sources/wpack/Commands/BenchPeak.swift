import ArgumentParser
import Dispatch
import Foundation
import WPack

/// The machine's multiply-add peak, and the engine's GEMM throughput against it: the six
/// products of one MiniLM layer at 32 x 128 tokens (q, k, v, output, and the two of the
/// feed-forward block), each with its bias epilogue, as the model runs them.
struct BenchPeak: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peak",
        abstract: "Measure the FMA peak and the engine's GEMM throughput as a fraction of it.")

    @Option(help: "Rows of the products (32 x 128 tokens = 4096).")
    var rows = 4096

    @OptionGroup var report: BenchReport

    func run() throws {
        let one = CPU.fmaPeak(workers: 1), all = CPU.fmaPeak(workers: CPU.workers)
        // MiniLM: width 384, feed-forward 1536. (in, out) of each product of a layer.
        let shapes = [(384, 384), (384, 384), (384, 384), (384, 384), (384, 1536), (1536, 384)]
        var rowsOut: [[String: Any]] = []
        var totalFlops = 0.0, totalSeconds = 0.0
        for (i, (k, n)) in shapes.enumerated() {
            let x = Tensor.randn(shape: [rows, k], seed: UInt64(i + 1)).materialized()
            let w = Tensor.randn(shape: [n, k], seed: UInt64(i + 10)).materialized(), b = Tensor.randn(shape: [n], seed: 3).materialized()
            _ = (matmul(x, w.transposed()) + b).materialized()
            let ms = Timing.medianMilliseconds(repeats: report.repeats(default: 10)) { _ = (matmul(x, w.transposed()) + b).materialized() }
            let flops = 2.0 * Double(rows * k * n)
            totalFlops += flops
            totalSeconds += ms / 1000
            rowsOut.append(["m": rows, "k": k, "n": n, "median_ms": ms, "gflops": flops / (ms / 1000) / 1e9])
        }
        let gemm = totalFlops / totalSeconds / 1e9
        let doc: [String: Any] = [
            "level": CPU.level.description, "fma_peak_gflops_one_core": one, "fma_peak_gflops": all, "workers": CPU.workers,
            "gemm": rowsOut, "gemm_gflops": gemm, "gemm_fraction_of_peak": gemm / all, "blas": CPU.blas,
        ]
        try report.emit(doc) {
            var lines = [String(format: "FMA peak (%@ kernels): %.1f GFLOP/s on one core, %.1f on %d workers", CPU.level.description, one, all,
                                CPU.workers)]
            for r in rowsOut {
                lines.append(String(format: "  [%d, %d] x [%d, %d]ᵀ + bias: %.2f ms, %.1f GFLOP/s", rows, r["k"] as! Int, r["n"] as! Int,
                                    r["k"] as! Int, r["median_ms"] as! Double, r["gflops"] as! Double))
            }
            lines.append(String(format: "MiniLM layer's GEMMs at %d rows: %.1f GFLOP/s = %.0f%% of the measured peak", rows, gemm, 100 * gemm / all))
            return lines.joined(separator: "\n")
        }
    }
}
