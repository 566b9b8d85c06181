import ArgumentParser
import CBLAS
import Foundation
import WPack

/// Contractions timed in this process: matmul against a direct cblas_sgemm call of the system
/// OpenBLAS on the same buffers (wpack's GEMM and engine against the BLAS it replaced), the
/// seed's einsums and a 3x3 conv2d.
/// tools/bench/compare runs NumPy and PyTorch on the same workloads and prints ratios.
struct BenchContractions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contractions",
        abstract: "Time matmul vs OpenBLAS's sgemm on MiniLM's shapes, the seed's einsums, and conv2d.")

    @OptionGroup var report: BenchReport

    private func median(_ body: () -> Void) -> Double {
        body()  // warm up
        return Timing.medianMilliseconds(repeats: report.repeats(default: 9), body)
    }

    func run() throws {
        var rows: [[String: Any]] = []
        // MiniLM's linear layers: x [rows, in] times W [out, in] transposed.
        for tokens in [16, 4096] {
            for (inDim, outDim) in [(384, 384), (384, 1536), (1536, 384)] {
                let x = Tensor.randn(shape: [tokens, inDim], seed: 1), w = Tensor.randn(shape: [outDim, inDim], seed: 2)
                let c = UnsafeMutablePointer<Float>.allocate(capacity: tokens * outDim)
                defer { c.deallocate() }
                // The direct call gets OpenBLAS's own thread pool, as a program calling it would.
                _ = matmul(x, w.transposed()).materialized()
                openblas_set_num_threads(Int32(ProcessInfo.processInfo.activeProcessorCount))
                let direct = withExtendedLifetime((x, w)) {
                    median {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(outDim), Int32(inDim), 1,
                                    x.baseAddress, Int32(inDim), w.baseAddress, Int32(inDim), 0, c, Int32(outDim))
                    }
                }
                openblas_set_num_threads(1)
                var copied = 0
                let engine = median { copied = Stats.measure { _ = matmul(x, w.transposed()).materialized() }.1.bytesCopied }
                rows.append(["name": "matmul [\(tokens),\(inDim)]x[\(outDim),\(inDim)]^T", "wpack_ms": engine, "sgemm_ms": direct,
                             "bytes_copied": copied])
            }
        }
        let q = Tensor.randn(shape: [32, 12, 128, 32], seed: 3), k = Tensor.randn(shape: [32, 12, 128, 32], seed: 4)
        var copied = 0
        rows.append(["name": "einsum bhtd,bhkd->bhtk [32,12,128,32]",
                     "wpack_ms": median { copied = Stats.measure { _ = einsum("bhtd,bhkd->bhtk", q, k).materialized() }.1.bytesCopied },
                     "bytes_copied": copied])
        let x = Tensor.randn(shape: [32, 64, 8, 8], seed: 5), w = Tensor.randn(shape: [128, 64, 8, 8], seed: 6)
        rows.append(["name": "einsum nchw,oihw->no [32,64,8,8] [128,64,8,8]",
                     "wpack_ms": median { copied = Stats.measure { _ = einsum("nchw,oihw->no", x, w).materialized() }.1.bytesCopied },
                     "bytes_copied": copied])
        let image = Tensor.randn(shape: [8, 64, 56, 56], seed: 7), filters = Tensor.randn(shape: [64, 64, 3, 3], seed: 8)
        var im2col = 0
        rows.append(["name": "conv2d 3x3 pad 1 [8,64,56,56] -> 64",
                     "wpack_ms": median { im2col = Stats.measure { _ = conv2d(image, filters, padding: (1, 1)).materialized() }.1.bytesCopied },
                     "bytes_copied": im2col])
        try report.emit(["wpack": rows]) {
            rows.map { r in
                var line = "\(r["name"]!): \(String(format: "%.3f", r["wpack_ms"] as! Double)) ms"
                if let s = r["sgemm_ms"] as? Double {
                    line += String(format: ", OpenBLAS sgemm %.3f ms (ratio %.3f, difference %.1f us)", s, (r["wpack_ms"] as! Double) / s,
                                   ((r["wpack_ms"] as! Double) - s) * 1000)
                }
                return line + ", \(r["bytes_copied"]!) B copied"
            }.joined(separator: "\n")
        }
    }
}
