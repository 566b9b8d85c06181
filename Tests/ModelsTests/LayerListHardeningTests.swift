import Foundation
import LazyTensor
import Testing
@testable import Models
import WeightStore

/// Layer lists are checked when the model loads: a parameter PyTorch would refuse is a
/// ModelError naming the layer, never a trap inside `run`; and a list as long as anyone could
/// write evaluates.
@Suite struct LayerListHardeningTests {
    static func store(in folder: TemporaryFolder) throws -> WeightStore {
        let path = folder.file("w.wpk")
        let writer = try WeightStoreWriter(path: path)
        try writer.addTensor(name: "conv.weight", Tensor(shape: [2, 1, 3, 3], scalars: (0..<18).map { Float($0) / 18 }))
        try writer.addTensor(name: "fc.weight", Tensor(shape: [3, 4], scalars: (0..<12).map { Float($0) / 12 }))
        try writer.addTensor(name: "fc.bias", Tensor(shape: [3], scalars: [0.1, 0.2, 0.3]))
        try writer.finish()
        return try WeightStore(path: path)
    }

    @Test(arguments: [
        (#"{"op": "conv2d", "weight": "conv.weight", "stride": 0}"#, "'stride' [0, 0] must be at least 1"),
        (#"{"op": "conv2d", "weight": "conv.weight", "stride": [1, -2]}"#, "'stride' [1, -2] must be at least 1"),
        (#"{"op": "conv2d", "weight": "conv.weight", "dilation": 0}"#, "'dilation'"),
        (#"{"op": "conv2d", "weight": "conv.weight", "padding": -1}"#, "'padding'"),
        (#"{"op": "conv2d", "weight": "conv.weight", "groups": 0}"#, "'groups'"),
        (#"{"op": "conv2d", "weight": "conv.weight", "groups": 3}"#, "groups 3 must divide"),
        (#"{"op": "conv2d", "weight": "conv.weight", "strides": 2}"#, "takes no 'strides'"),
        (#"{"op": "conv2d", "weight": "conv.weight", "stride": 1.5}"#, "must be an integer"),
        (#"{"op": "maxPool2d", "kernel": 0}"#, "'kernel' [0, 0]"),
        (#"{"op": "maxPool2d", "kernel": 2, "stride": 0}"#, "'stride'"),
        (#"{"op": "avgPool2d", "kernel": 3, "padding": 2}"#, "at most half the kernel"),
        (#"{"op": "softmax", "axis": "last"}"#, "'axis' must be an integer"),
        (#"{"op": "linear", "weight": "fc.weight", "bias": "fc.weight"}"#, "fc.weight"),
        (#"{"op": "linear", "weight": "fc.weight", "bias": 3}"#, "must be a tensor name"),
        (#"{"op": "relu", "op": "gelu"}"#, "given twice"),
        (#"{"op": "conv3d"}"#, "unknown op 'conv3d'"),
    ])
    func badParametersAreRefusedAtLoad(layer: String, phrase: String) throws {
        let folder = TemporaryFolder()
        let store = try Self.store(in: folder)
        do {
            _ = try SequentialModel(store: store, layerList: #"{"layers": [\#(layer)]}"#)
            Issue.record("accepted \(layer)")
        } catch {
            #expect("\(error)".contains(phrase), "\(layer): \(error)")
            #expect("\(error)".contains("layer 0") || "\(error)".contains("fc.weight"), "\(error)")
        }
    }

    @Test func aSoftmaxAxisOutsideTheInputIsAnErrorWhenRun() throws {
        let folder = TemporaryFolder()
        let model = try SequentialModel(store: try Self.store(in: folder), layerList: #"{"layers": [{"op": "softmax", "axis": 5}]}"#)
        #expect(throws: ModelError.self) { _ = try model(Tensor(shape: [2, 4], scalars: Array(repeating: 1, count: 8))) }
    }

    @Test func thirtyThousandLayersEvaluate() throws {
        let folder = TemporaryFolder()
        let store = try Self.store(in: folder)
        let layers = Array(repeating: #"{"op": "relu"}"#, count: 30_000) + [#"{"op": "linear", "weight": "fc.weight", "bias": "fc.bias"}"#]
        let model = try SequentialModel(store: store, layerList: #"{"layers": [\#(layers.joined(separator: ","))]}"#)
        let y = try model(Tensor(shape: [1, 4], scalars: [1, -1, 2, -2])).materialized().scalars
        // relu keeps [1, 0, 2, 0]; fc rows are (0,1,2,3)/12, (4..7)/12, (8..11)/12, plus the bias.
        let expected: [Float] = [(0 + 4) / 12 + 0.1, (4 + 12) / 12 + 0.2, (8 + 20) / 12 + 0.3]
        for (a, b) in zip(y, expected) { #expect(abs(a - b) < 1e-5) }
    }
}
