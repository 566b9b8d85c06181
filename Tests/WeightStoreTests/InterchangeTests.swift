import Foundation
import LazyTensor
import Testing
@testable import WeightStore

/// Every input format `wpack pack` reads, from committed fixtures written by NumPy
/// (tools/make_fixtures.py), packed and read back against the values NumPy recorded.
@Suite struct InterchangeTests {
    struct Expected: Decodable {
        let dtype: String
        let shape: [Int]
        let values: [Double]
    }

    static let expected: [String: [String: Expected]] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Fixtures.path("interchange/expected.json")))
        return try! JSONDecoder().decode([String: [String: Expected]].self, from: data)
    }()

    static func pack(_ inputs: [String], policy: HalfPolicy = .widen, to path: String) throws {
        let writer = try WeightStoreWriter(path: path)
        for input in inputs {
            let bundle = try InputReader.read(path: input, policy: policy)
            for t in bundle.tensors { try writer.addTensor(name: t.name, dtype: t.dtype, shape: t.shape, source: t.source) }
            for (k, v) in bundle.metadata { try writer.setMetadata(k, v) }
        }
        try writer.finish()
    }

    static func values(of info: TensorInfo, in store: WeightStore) throws -> [Double] {
        // Halves and blocks: the float32 values they decode to.
        if info.dtype?.isCodedWeight == true { return try store.tensor(info.name).scalars.map(Double.init) }
        return try store.withRawBytes(info.name) { raw -> [Double] in
            (0..<info.elementCount).map { i -> Double in
                switch info.dtype! {
                case .float32: Double(raw.loadUnaligned(fromByteOffset: i * 4, as: Float.self))
                case .float64: raw.loadUnaligned(fromByteOffset: i * 8, as: Double.self)
                case .int64: Double(raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
                case .int32: Double(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
                case .uint8, .bool: Double(raw[i])
                default: .nan
                }
            }
        }
    }

    @Test(arguments: expected.keys.sorted())
    func packedInputMatchesNumPy(file: String) throws {
        let folder = TemporaryFolder()
        let out = folder.file("o.wpk")
        try Self.pack([Fixtures.path("interchange/" + file)], to: out)
        let store = try WeightStore(path: out)
        let expected = Self.expected[file]!
        #expect(Set(store.tensorNames) == Set(expected.keys))
        for (name, e) in expected {
            let info = try #require(store.info(name))
            #expect(info.dtype?.name == e.dtype, "\(file):\(name)")
            #expect(info.shape == e.shape, "\(file):\(name)")
            let got = try Self.values(of: info, in: store)
            // float16 inputs are widened exactly; float32 values are compared at float32 precision.
            let tolerance = info.dtype == .float32 ? 1e-7 : 0
            #expect(zip(got, e.values).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }, "\(file):\(name)")
            #expect(got.count == e.values.count)
        }
        try store.verify()
    }

    @Test func safetensorsMetadataAndKeptHalves() throws {
        let folder = TemporaryFolder()
        let out = folder.file("k.wpk")
        try Self.pack([Fixtures.path("interchange/mixed.safetensors")], policy: .keep, to: out)
        let store = try WeightStore(path: out)
        #expect(store.info("f16")?.dtype == .float16)
        #expect(store.info("bf16")?.dtype == .bfloat16)
        #expect(store.metadata["note"] == "fixture")
        let widened = Self.expected["mixed.safetensors"]!["f16"]!.values.map(Float.init)
        #expect(try store.tensor("f16").scalars == widened)
    }

    @Test func unpackRoundTripsBytesNamesAndShapes() throws {
        let folder = TemporaryFolder()
        let packed = folder.file("p.wpk")
        try Self.pack([Fixtures.path("interchange/mixed.safetensors")], policy: .keep, to: packed)
        let store = try WeightStore(path: packed)
        for ext in ["safetensors", "npz"] where ext == "safetensors" || !store.infos.contains(where: { $0.dtype == .bfloat16 }) {
            let out = folder.file("u." + ext)
            if ext == "npz" { try Npz.write(store, to: out) } else { try Safetensors.write(store, to: out) }
            let again = folder.file("again-\(ext).wpk")
            try Self.pack([out], policy: .keep, to: again)
            let back = try WeightStore(path: again)
            #expect(Set(back.tensorNames) == Set(store.tensorNames))
            for info in store.infos {
                let other = try #require(back.info(info.name))
                #expect(other.shape == info.shape && other.dtype == info.dtype && other.checksum == info.checksum)
            }
        }
        // npz cannot hold bfloat16: a clear error and no output file.
        #expect(throws: InterchangeError.self) { try Npz.write(store, to: folder.file("bf.npz")) }
        #expect(!FileManager.default.fileExists(atPath: folder.file("bf.npz")))
    }

    @Test func npzRoundTripOfTheDigitsModel() throws {
        let folder = TemporaryFolder()
        let packed = folder.file("d.wpk")
        try Self.pack([Fixtures.path("digits-cnn/digits_cnn.safetensors")], to: packed)
        let store = try WeightStore(path: packed)
        try Npz.write(store, to: folder.file("d.npz"))
        try Self.pack([folder.file("d.npz")], to: folder.file("d2.wpk"))
        let back = try WeightStore(path: folder.file("d2.wpk"))
        for info in store.infos { #expect(back.info(info.name)?.checksum == info.checksum) }
    }

    @Test func badInputsGetOneClearError() throws {
        let folder = TemporaryFolder()
        func write(_ name: String, _ bytes: [UInt8]) -> String {
            let p = folder.file(name)
            try! Data(bytes).write(to: URL(fileURLWithPath: p))
            return p
        }
        let cases: [(String, String)] = [
            (write("short.safetensors", [1, 2, 3]), "too small"),
            (write("huge.safetensors", [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0x7B]), "does not fit"),
            (write("lfs.safetensors", Array("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n".utf8)), "git-LFS"),
            (write("notjson.safetensors", [4, 0, 0, 0, 0, 0, 0, 0] + Array("nope".utf8)), "not a .safetensors"),
            (write("badjson.safetensors", [4, 0, 0, 0, 0, 0, 0, 0] + Array("{no}".utf8)), "JSON"),
            (write("f8.safetensors", Self.safetensors(#"{"x":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#, data: 2)), "F8_E4M3"),
            (write("offsets.safetensors", Self.safetensors(#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: 8)), "data_offsets"),
            (write("past.safetensors", Self.safetensors(#"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: 8)), "data_offsets"),
            (write("bad.npy", Array("hello".utf8)), "not a .npy"),
            (write("trunc.npy", Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("interchange/c_f32.npy")))).dropLast(4)), "truncated"),
            (write("obj.npy", Self.npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }")), "unsupported dtype"),
            (write("c.npy", Self.npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }")), "unsupported dtype"),
            (write("bad.npz", Array("PK\u{05}\u{06}".utf8)), "zip"),
            (write("model.bin", [1]), "pickle"),
            (write("x.csv", [1]), "unknown input type"),
            (folder.file("missing.npy"), "no such file"),
        ]
        for (path, phrase) in cases {
            do {
                let bundle = try InputReader.read(path: path)
                Issue.record("\(path) was accepted with \(bundle.tensors.count) tensors")
            } catch let error as InterchangeError {
                #expect(error.description.contains(phrase), "\(path): \(error)")
                #expect(!error.description.contains("\n"))
            } catch let error as WeightStoreError {
                #expect(error.description.contains(phrase), "\(path): \(error)")
            }
        }
    }

    @Test func modelFolderKeepsConfigFilesAsMetadata() throws {
        let folder = TemporaryFolder()
        let model = folder.file("model")
        try FileManager.default.createDirectory(atPath: model + "/1_Pooling", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("digits-cnn/digits_cnn.safetensors"), toPath: model + "/model.safetensors")
        try #"{"model_type": "cnn"}"#.write(toFile: model + "/config.json", atomically: true, encoding: .utf8)
        try "[PAD]\n[UNK]\n".write(toFile: model + "/vocab.txt", atomically: true, encoding: .utf8)
        try "{}".write(toFile: model + "/1_Pooling/config.json", atomically: true, encoding: .utf8)
        try "ignored".write(toFile: model + "/README.md", atomically: true, encoding: .utf8)
        try Self.pack([model], to: folder.file("m.wpk"))
        let store = try WeightStore(path: folder.file("m.wpk"))
        #expect(store.metadata["file:config.json"] == #"{"model_type": "cnn"}"#)
        #expect(store.metadata["file:vocab.txt"] == "[PAD]\n[UNK]\n")
        #expect(store.metadata["file:1_Pooling/config.json"] == "{}")
        #expect(store.metadata["model.type"] == "cnn")
        #expect(store.metadata["file:README.md"] == nil)
        #expect(store.tensorNames.count == 8)
    }

    static func safetensors(_ json: String, data: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { bytes += $0 }
        return bytes + Array(json.utf8) + [UInt8](repeating: 0, count: data)
    }

    static func npy(_ dict: String) -> [UInt8] {
        [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(dict.utf8.count), 0] + Array(dict.utf8) + [UInt8](repeating: 0, count: 16)
    }
}
