import ArgumentParser
import Foundation
import WPack

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a sequential model .wpk (a CNN or MLP packed with --layers) on a .npy batch.")

    @Argument(help: "The model .wpk.")
    var model: String

    @Option(help: "Input batch, a .npy of float32 (or float16/float64) shaped [N, ...].")
    var input: String

    @Option(help: "Write the outputs here as a float32 .npy; without it, the predicted class of each row is printed.")
    var output: String?

    @Option(help: "Integer labels (.npy, [N]) to report accuracy against.")
    var labels: String?

    @Flag(help: "Report latency, kernels, and bytes allocated and copied.")
    var stats = false

    func run() throws {
        if let output, FileIdentity.same(output, model) || FileIdentity.same(output, input) {
            throw CommandFailure("the output '\(output)' is also an input")
        }
        let store = try WeightStore(path: model)
        let net = try SequentialModel(store: store)
        let x = try ArrayFile.readNpy(path: input)
        // A model's input is values, not ids: integers are refused rather than converted.
        guard x.dtype == .float32 else {
            throw CommandFailure("'\(input)' holds \(x.dtype), not floating-point data (the model takes float32)")
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let (y, measured) = try Stats.measure { try net(x).materialized() }
        let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        try store.checkUnchanged()
        let rows = y.shape.first ?? 1
        let width = y.scalarCount / max(rows, 1)
        let values = y.scalars
        let predictions = (0..<rows).map { r in (0..<width).max { values[r * width + $0] < values[r * width + $1] } ?? 0 }
        if let output {
            try ArrayFile.writeNpy(y, to: output)
            print("wrote \(output): \(y.shape)")
        } else if labels == nil && !stats {
            for (r, p) in predictions.enumerated() { print("\(r)\t\(p)") }
        }
        if let labels {
            let bundle = try InputReader.read(path: labels)
            guard let t = bundle.tensors.first, t.shape.reduce(1, *) == rows else {
                throw CommandFailure("labels must hold one integer per input row (\(rows))")
            }
            var truth: [Int] = []
            try t.source.produce { chunk in
                switch t.dtype {
                case .int64: truth += chunk.bindMemory(to: Int64.self).map { Int($0) }
                case .int32: truth += chunk.bindMemory(to: Int32.self).map { Int($0) }
                case .uint8: truth += chunk.map { Int($0) }
                default: throw CommandFailure("labels must be integers, not \(t.dtype.name)")
                }
            }
            let correct = zip(predictions, truth).filter { $0 == $1 }.count
            print(String(format: "accuracy: %d/%d = %.5f", correct, rows, Double(correct) / Double(max(rows, 1))))
        }
        if stats {
            // One cold call: planning, the first touch of the weights' pages and of fresh
            // buffers are in it. `wpack bench run` reports the steady state.
            print(String(format: "latency: %.2f ms for %d rows (one cold call; steady state: wpack bench run)", milliseconds, rows)
                  + ", kernels: \(measured.kernels), allocated: \(Terminal.formatBytes(measured.bytesAllocated))"
                  + ", copied: \(Terminal.formatBytes(measured.bytesCopied)) "
                  + "(\(measured.copiedByReason.map { "\($0.key.rawValue) \(Terminal.formatBytes($0.value))" }.sorted().joined(separator: ", ")); weights: 0 B)")
        }
    }
}
