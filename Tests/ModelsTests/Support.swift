import Foundation
import Testing
@testable import Models
import WeightStore
import LazyTensor

enum Fixtures {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static func path(_ relative: String) -> String { repository.appendingPathComponent("Tests/Fixtures/" + relative).path }
    static let minilmFolder = repository.appendingPathComponent(".cache/minilm/model").path
    static var minilmAvailable: Bool { FileManager.default.fileExists(atPath: minilmFolder + "/model.safetensors") }
    static let mpnetFolder = repository.appendingPathComponent(".cache/mpnet/model").path
    static var mpnetAvailable: Bool { FileManager.default.fileExists(atPath: mpnetFolder + "/model.safetensors") }
    static func text(_ relative: String) -> String { try! String(contentsOfFile: path(relative), encoding: .utf8) }
    static func json(_ relative: String) -> JSONValue { try! JSONValue.parse(text(relative)) }
}

final class TemporaryFolder: @unchecked Sendable {
    let path = NSTemporaryDirectory() + "wpack-models-" + UUID().uuidString
    init() { try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

/// Packs inputs into a .wpk the way `wpack pack` does.
/// With `weights`, the tensors `wpack pack --weights` would convert are stored in that coding.
func pack(_ inputs: [String], to path: String, metadata: [(String, MetadataValue)] = [], weights: DType? = nil,
          convert: [String] = []) throws {
    let writer = try WeightStoreWriter(path: path)
    let conversion = weights.map { WeightConversion(dtype: $0, convert: convert) }
    for input in inputs {
        let bundle = try InputReader.read(path: input)
        for var t in bundle.tensors {
            if let conversion, try conversion.selects(t) { t = try conversion.convert(t).tensor }
            try writer.addTensor(name: t.name, dtype: t.dtype, shape: t.shape, source: t.source)
        }
        for (k, v) in bundle.metadata { try writer.setMetadata(k, v) }
    }
    for (k, v) in metadata { try writer.setMetadata(k, v) }
    try writer.finish()
}

/// The MiniLM store, packed once per test process into a temporary folder.
enum MiniLMStore {
    static let folder = TemporaryFolder()
    static let store: WeightStore? = {
        guard Fixtures.minilmAvailable else { return nil }
        let path = folder.file("minilm.wpk")
        try! pack([Fixtures.minilmFolder], to: path)
        return try! WeightStore(path: path)
    }()
}

struct Reference: Decodable {
    struct Row: Decodable { let text: String; let input_ids: [Int]; let embedding: [Double] }
    let rows: [Row]
    let max_seq_length: Int
    let hidden_states_first_text: [[[Double]]]

    static let shared: Reference = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Fixtures.path("minilm/reference.json")))
        return try! JSONDecoder().decode(Reference.self, from: data)
    }()
}

/// Every vector against its reference: cosine ≥ 0.99999 and max abs ≤ 1e-4, widths equal.
func expectVectorsMatch(_ got: [[Float]], _ expected: JSONValue, texts: [String], _ label: String) {
    let want = expected.array!.map(\.floats)
    #expect(got.count == want.count, "\(label): \(got.count) vectors, expected \(want.count)")
    for (text, (g, w)) in zip(texts, zip(got, want)) {
        #expect(g.count == w.count, "\(label): width \(g.count), expected \(w.count)")
        let (cosine, maxAbs) = compare(g, w)
        #expect(cosine >= 0.99999 && maxAbs <= 1e-4, "\(label) \(text.debugDescription): cosine \(cosine), max abs \(maxAbs)")
    }
}

/// Cosine and largest absolute difference of two vectors.
func compare(_ a: [Float], _ b: [Float]) -> (cosine: Float, maxAbs: Float) {
    let dot = zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 }
    let na = a.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot(), nb = b.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
    return (dot / max(na * nb, 1e-30), zip(a, b).map { abs($0 - $1) }.max() ?? 0)
}

extension JSONValue {
    var ints: [Int] { array!.map { $0.int! } }
    var floats: [Float] { array!.map { Float($0.double!) } }
}
