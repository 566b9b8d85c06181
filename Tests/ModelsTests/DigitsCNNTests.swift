import Foundation
import Testing
@testable import Models
import LazyTensor
import WeightStore

/// The trained digits CNN (Tests/Fixtures/digits-cnn, from PyTorch) against PyTorch's logits.
@Suite struct DigitsCNNTests {
    static func store() throws -> (WeightStore, TemporaryFolder) {
        let folder = TemporaryFolder()
        let path = folder.file("digits.wpk")
        let layers = try String(contentsOfFile: Fixtures.path("digits-cnn/layers.json"), encoding: .utf8)
        try pack([Fixtures.path("digits-cnn/digits_cnn.safetensors")], to: path, metadata: [(SequentialModel.metadataKey, .string(layers))])
        return (try WeightStore(path: path), folder)
    }

    @Test func logitsAndAccuracyMatchPyTorch() throws {
        let (store, folder) = try Self.store()
        _ = folder
        let model = try SequentialModel(store: store)
        let images = try ArrayFile.readNpy(path: Fixtures.path("digits-cnn/test_images.npy"))
        let reference = try ArrayFile.readNpy(path: Fixtures.path("digits-cnn/test_logits.npy")).scalars
        let labels = try InputReader.read(path: Fixtures.path("digits-cnn/test_labels.npy")).tensors[0]
        #expect(images.shape == [397, 1, 8, 8])
        let (logits, stats) = try Stats.measure { try model(images).materialized() }
        #expect(logits.shape == [397, 10])
        let got = logits.scalars
        let maxDiff = zip(got, reference).map { abs($0 - $1) }.max()!
        #expect(maxDiff <= 1e-4, "max abs diff \(maxDiff)")
        // Labels are int64 in the file.
        var labelValues: [Int64] = []
        try labels.source.produce { chunk in labelValues += chunk.bindMemory(to: Int64.self) }
        let predictions = (0..<397).map { row in (0..<10).max { got[row * 10 + $0] < got[row * 10 + $1] }! }
        let correct = zip(predictions, labelValues).filter { Int64($0) == $1 }.count
        #expect(abs(Double(correct) / 397 - 0.9899244332493703) < 1e-9, "accuracy \(correct)/397")
        // Nothing is copied: the weights are read in place, and both convolutions pack their
        // patches from the images inside the GEMM (no patch matrix, no reorder).
        #expect(stats.bytesCopied == 0, "\(stats)")
        // conv1+relu, conv2+relu+pool, fc1+relu, fc2: four kernels.
        #expect(stats.kernels == 4, "\(model.store.path)")
        #expect(try model(images).plan().kernelNames == ["conv2d + epilogue", "conv2d + epilogue + pool2d", "matmul + epilogue",
                                                        "matmul + epilogue"])
    }

    /// With its linear layers in q8_0 the CNN still classifies as PyTorch's float32 does
    /// (393 of 397), reads those weights in place, and copies nothing.
    @Test func accuracyHoldsWithEightBitLinearWeights() throws {
        let folder = TemporaryFolder()
        let path = folder.file("digits-q8.wpk")
        let layers = try String(contentsOfFile: Fixtures.path("digits-cnn/layers.json"), encoding: .utf8)
        try pack([Fixtures.path("digits-cnn/digits_cnn.safetensors")], to: path,
                 metadata: [(SequentialModel.metadataKey, .string(layers))], weights: .q8_0)
        let store = try WeightStore(path: path)
        #expect(store.info("fc1.weight")?.dtype == .q8_0 && store.info("conv1.weight")?.dtype == .float32)
        let model = try SequentialModel(store: store)
        let images = try ArrayFile.readNpy(path: Fixtures.path("digits-cnn/test_images.npy"))
        let labels = try InputReader.read(path: Fixtures.path("digits-cnn/test_labels.npy")).tensors[0]
        var labelValues: [Int64] = []
        try labels.source.produce { chunk in labelValues += chunk.bindMemory(to: Int64.self) }
        let (logits, stats) = try Stats.measure { try model(images).materialized() }
        let got = logits.scalars
        let predictions = (0..<397).map { row in (0..<10).max { got[row * 10 + $0] < got[row * 10 + $1] }! }
        let correct = zip(predictions, labelValues).filter { Int64($0) == $1 }.count
        #expect(correct >= 393, "accuracy \(correct)/397")
        #expect(stats.bytesCopied == 0 && stats.kernels == 4, "\(stats)")
    }

    @Test func wrongInputShapeIsAnError() throws {
        let (store, folder) = try Self.store()
        _ = folder
        let model = try SequentialModel(store: store)
        #expect(throws: ModelError.self) { try model(Tensor.zeros(shape: [2, 3, 8, 8])) }
        #expect(throws: ModelError.self) { try model(Tensor.zeros(shape: [2, 1, 7, 8])) }
    }

    @Test func storeWithoutALayerListIsNotASequentialModel() throws {
        let folder = TemporaryFolder()
        try pack([Fixtures.path("digits-cnn/digits_cnn.safetensors")], to: folder.file("plain.wpk"))
        let store = try WeightStore(path: folder.file("plain.wpk"))
        #expect(throws: ModelError.self) { try SequentialModel(store: store) }
        #expect(throws: ModelError.self) { try SentenceEncoder(store: store) }
    }

    @Test(arguments: [
        #"{"layers": [{"op": "conv2d", "weight": "nope.weight"}]}"#,
        #"{"layers": [{"op": "teleport"}]}"#,
        #"{"layers": [{"op": "linear", "weight": "fc1.weight", "bias": "fc2.bias"}]}"#,
        #"not json"#,
    ])
    func badLayerListsAreClearErrors(list: String) throws {
        let (store, folder) = try Self.store()
        _ = folder
        #expect(throws: ModelError.self) { try SequentialModel(store: store, layerList: list) }
    }
}
