import Foundation
import LazyTensor
@testable import WeightStore

/// Paths of the committed fixtures (Tests/Fixtures) and format vectors (formats/vectors).
enum Fixtures {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static func path(_ relative: String) -> String { repository.appendingPathComponent("Tests/Fixtures/" + relative).path }
    static func vector(_ name: String) -> String { repository.appendingPathComponent("formats/vectors/" + name).path }
}

/// A fresh folder per test, removed at the end.
final class TemporaryFolder {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "wpack-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
    var contents: [String] { (try? FileManager.default.contentsOfDirectory(atPath: path))?.sorted() ?? [] }
}

/// Deterministic pseudo-random numbers (SplitMix64), so failures reproduce.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func floats(_ count: Int, seed: UInt64) -> [Float] {
    var g = SplitMix(state: seed)
    return (0..<count).map { _ in Float(Int(g.next() % 2001) - 1000) / 250 }
}

/// Writes a small store with a mix of tensors and returns its bytes.
@discardableResult
func writeSampleStore(to path: String, alignment: Int = 64, compress: Bool = false) throws -> [String: [Float]] {
    let writer = try WeightStoreWriter(path: path, options: .init(alignment: alignment))
    let a = floats(12, seed: 1), b = floats(5, seed: 2), c = floats(40, seed: 3)
    try writer.addTensor(name: "layer.weight", Tensor(shape: [3, 4], scalars: a))
    try writer.addTensor(name: "layer.bias", Tensor(shape: [5], scalars: b))
    try writer.addTensor(name: "big", Tensor(shape: [2, 4, 5], scalars: c), codec: compress ? .zstd : .none)
    try writer.addTensor(name: "ids", dtype: .int64, shape: [3],
                         source: .bytes([1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]))
    try writer.setMetadata("model", .string("sample"))
    try writer.setMetadata("layers", .int(2))
    try writer.finish()
    return ["layer.weight": a, "layer.bias": b, "big": c]
}

extension WeightStoreError {
    /// The case name, so tests can match a rule without spelling its payload.
    var rule: String {
        if let label = Mirror(reflecting: self).children.first?.label { return label }
        switch self {
        case .preambleChecksumMismatch: return "preambleChecksumMismatch"
        case .headerChecksumMismatch: return "headerChecksumMismatch"
        default: return "\(self)"
        }
    }
}
