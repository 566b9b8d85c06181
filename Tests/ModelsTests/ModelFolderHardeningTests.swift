import Foundation
import Testing
@testable import Models
import WeightStore

/// A model folder with one field or tensor made hostile loads as a clear ModelError naming it:
/// never a trap, never an allocation sized by the field, never a layer run without its weights.
@Suite struct ModelFolderHardeningTests {
    /// Packs the bert fixture with `edit` applied to the folder, then loads it.
    static func load(_ edit: (String) throws -> Void) throws -> Result<SentenceEncoder, any Error> {
        let folder = TemporaryFolder()
        let model = folder.file("model")
        try FileManager.default.copyItem(atPath: Fixtures.path("encoders/bert"), toPath: model)
        try edit(model)
        do {
            try pack([model], to: folder.file("m.wpk"))
            return .success(try SentenceEncoder(store: WeightStore(path: folder.file("m.wpk"))))
        } catch {
            return .failure(error)
        }
    }

    static func setConfig(_ key: String, _ value: String) -> (String) throws -> Void {
        { model in
            let path = model + "/config.json"
            var text = try String(contentsOfFile: path, encoding: .utf8)
            let pattern = try Regex("\"\(key)\": *[^,}\\n]+")
            #expect(text.contains(pattern), "fixture has no \(key)")
            text.replace(pattern, with: "\"\(key)\": \(value)")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    @Test(arguments: [
        ("num_hidden_layers", "-1", "num_hidden_layers"),
        ("num_hidden_layers", "1000000000000", "num_hidden_layers"),
        ("max_position_embeddings", "0", "max_position_embeddings"),
        ("type_vocab_size", "0", "type_vocab_size"),
        ("hidden_size", "1000000000000", "word_embeddings.weight' has shape"),
        ("vocab_size", "-5", "vocab_size"),
        ("pad_token_id", "99999999", "pad_token_id"),
        ("num_attention_heads", "0", "hidden_size"),
    ])
    func hostileConfigValuesAreRefusedByName(key: String, value: String, named: String) throws {
        switch try Self.load(Self.setConfig(key, value)) {
        case .success: Issue.record("\(key) = \(value) was accepted")
        case .failure(let error): #expect("\(error)".contains(named), "\(key) = \(value): \(error)")
        }
    }

    /// Rewrites one tensor of the fixture's safetensors with another shape (or removes it).
    static func replaceTensor(_ name: String, shape: [Int]?) -> (String) throws -> Void {
        { model in
            let path = model + "/model.safetensors"
            let bundle = try InputReader.read(path: path)
            var tensors: [(String, [Int], [Float])] = []
            for t in bundle.tensors {
                if t.name == name {
                    guard let shape else { continue }
                    tensors.append((t.name, shape, [Float](repeating: 0.5, count: shape.reduce(1, *))))
                } else {
                    tensors.append((t.name, t.shape, try t.loadFloat32().scalars))
                }
            }
            try writeSafetensors(tensors, to: path)
        }
    }

    @Test func anEmptyTokenTypeTableIsRefused() throws {
        guard case .failure(let error) = try Self.load(Self.replaceTensor("embeddings.token_type_embeddings.weight", shape: [0, 32])) else {
            Issue.record("accepted"); return
        }
        #expect("\(error)".contains("token_type_embeddings"), "\(error)")
    }

    @Test func aMissingBiasIsAnErrorNotALayerWithoutOne() throws {
        guard case .failure(let error) = try Self.load(Self.replaceTensor("encoder.layer.0.attention.self.query.bias", shape: nil)) else {
            Issue.record("accepted"); return
        }
        #expect("\(error)".contains("encoder.layer.0.attention.self.query.bias"), "\(error)")
    }
}

/// A minimal safetensors writer for fixtures edited in tests (float32 only).
func writeSafetensors(_ tensors: [(String, [Int], [Float])], to path: String) throws {
    var entries: [String] = []
    var offset = 0
    for (name, shape, values) in tensors {
        entries.append("\"\(name)\":{\"dtype\":\"F32\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + values.count * 4)]}")
        offset += values.count * 4
    }
    var json = Array(("{" + entries.joined(separator: ",") + "}").utf8)
    json += [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8)
    var data = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(contentsOf: json)
    for (_, _, values) in tensors { values.withUnsafeBytes { data.append(contentsOf: $0) } }
    try data.write(to: URL(fileURLWithPath: path))
}
