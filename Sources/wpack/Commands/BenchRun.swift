import ArgumentParser
import Foundation
import WPack

/// A sequential model (`wpack pack --layers`) over a whole input batch, timed in this process.
/// tools/bench/compare runs NumPy, PyTorch and ONNX Runtime on the same model and batch.
struct BenchRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Time a sequential model .wpk over a .npy batch.")

    @Argument(help: "The model .wpk.")
    var model: String

    @Option(help: "Input batch, a .npy shaped [N, ...].")
    var input: String

    @OptionGroup var report: BenchReport

    func run() throws {
        let store = try WeightStore(path: model)
        let net = try SequentialModel(store: store)
        let x = try ArrayFile.readNpy(path: input)
        guard x.dtype == .float32 else {
            throw CommandFailure("'\(input)' holds \(x.dtype), not floating-point data (the model takes float32)")
        }
        _ = try net(x).materialized()  // warm up: page in the weights, fill the block pool
        var stats = Stats()
        var failure: Error?
        let median = Timing.medianMilliseconds(repeats: report.repeats(default: 30)) {
            do { stats = try Stats.measure { _ = try net(x).materialized() }.1 } catch { failure = error }
        }
        if let failure { throw failure }
        let row: [String: Any] = [
            "rows": x.shape.first ?? 1, "median_ms": median, "peak_rss_bytes": Timing.peakResidentBytes(),
            "kernels": stats.kernels, "bytes_allocated": stats.bytesAllocated, "bytes_copied": stats.bytesCopied,
            "peak_bytes": stats.peakBytes,
        ]
        try report.emit(row) {
            "\(x.shape.first ?? 1) rows: \(String(format: "%.3f", median)) ms, \(stats.kernels) kernels, "
                + "\(Terminal.formatBytes(stats.bytesAllocated)) allocated, \(Terminal.formatBytes(stats.bytesCopied)) copied"
        }
    }
}
