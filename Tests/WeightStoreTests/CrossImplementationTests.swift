import Foundation
import Testing
import LazyTensor
@testable import WeightStore

/// The specification is complete only if an independent implementation agrees with this one:
/// tools/wpk.py (numpy only, its own XXH3) reads what Swift writes and writes what Swift reads,
/// and the committed vectors in formats/vectors hold the expected answers.
@Suite struct CrossImplementationTests {
    struct Vector: Decodable {
        struct T: Decodable { let name: String; let dtype: String; let shape: [Int]; let values: [Double]; let checksum: String }
        let file: String
        let valid: Bool
        let error: String?
        let alignment: Int?
        let metadata: [String: String]?
        let tensors: [T]?
    }

    static let vectors: [Vector] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Fixtures.vector("vectors.json")))
        return try! JSONDecoder().decode([Vector].self, from: data)
    }()

    @Test(arguments: vectors.map(\.file))
    func formatVector(file: String) throws {
        let v = Self.vectors.first { $0.file == file }!
        let path = Fixtures.vector(file)
        if !v.valid {
            do {
                let store = try WeightStore(path: path)
                try store.verify()
                Issue.record("\(file) should have been refused with \(v.error ?? "?")")
            } catch {
                #expect(error.rule == v.error)
            }
            return
        }
        let store = try WeightStore(path: path, verify: .eager)
        if let a = v.alignment { #expect(store.alignment == a) }
        if let m = v.metadata { #expect(store.metadata == m) }
        #expect(store.tensorNames == (v.tensors ?? []).map(\.name))
        for t in v.tensors ?? [] {
            let info = try #require(store.info(t.name))
            #expect(info.dtype?.name == t.dtype && info.shape == t.shape && info.checksumHex == t.checksum)
            let got = try InterchangeTests.values(of: info, in: store)
            #expect(got == t.values)
        }
    }

    static func python(_ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Fixtures.repository.appendingPathComponent("tools/wpk.py").path] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    @Test func pythonReadsWhatSwiftWrites() throws {
        let folder = TemporaryFolder()
        let path = folder.file("s.wpk")
        try writeSampleStore(to: path, alignment: 4096, compress: true)
        let (status, stdout, stderr) = try Self.python(["inspect", path])
        #expect(status == 0, "\(stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])
        let tensors = try #require(json["tensors"] as? [[String: Any]])
        let store = try WeightStore(path: path)
        #expect(json["alignment"] as? Int == 4096)
        #expect(tensors.map { $0["name"] as? String } == store.tensorNames)
        for (t, info) in zip(tensors, store.infos) {
            #expect(t["checksum"] as? String == info.checksumHex)
            #expect(t["offset"] as? Int == info.offset)
            #expect(t["shape"] as? [Int] == info.shape)
            #expect(t["codec"] as? String == info.codec?.description)
        }
        #expect((json["metadata"] as? [String: Any])?["layers"] as? Int == 2)
        let verify = try Self.python(["verify", path])
        #expect(verify.0 == 0, "\(verify.2)")
        // Python's memmap view gives the same floats.
        let dumped = folder.file("d.npz")
        #expect(try Self.python(["dump", path, dumped]).0 == 0)
        let bundle = try InputReader.read(path: dumped)
        #expect(Set(bundle.tensors.map(\.name)) == ["layer.weight", "layer.bias", "ids"])
    }

    /// The 1.1 dtypes: the Python reader decodes every coding to the values wpack's own
    /// decoder gives (q4_1 within a rounding: NumPy multiplies and adds in two steps, wpack fuses them).
    @Test func pythonDecodesTheCodedWeights() throws {
        let folder = TemporaryFolder()
        let path = folder.file("c.wpk")
        let writer = try WeightStoreWriter(path: path)
        let values = Tensor.randn(shape: [6, 64], seed: 9).scalars
        var expected: [String: [Float]] = [:]
        for dtype in [DType.float16, .bfloat16, .q8_0, .q4_0, .q4_1] {
            let (bytes, _) = try Quantization.encode(values, shape: [6, 64], as: dtype)
            try writer.addTensor(name: dtype.name, dtype: dtype, shape: [6, 64], source: .bytes(bytes))
            var out = [Float](repeating: 0, count: values.count)
            bytes.withUnsafeBytes { raw in out.withUnsafeMutableBufferPointer { Widening.toFloat32(raw, dtype: dtype, count: values.count, into: $0.baseAddress!) } }
            expected[dtype.name] = out
        }
        try writer.finish()
        #expect(try Self.python(["verify", path]).0 == 0)
        let dumped = folder.file("c.npz")
        let dump = try Self.python(["dump", path, dumped])
        #expect(dump.0 == 0, "\(dump.2)")
        let bundle = try InputReader.read(path: dumped)
        #expect(bundle.tensors.count == 5)
        for t in bundle.tensors {
            var got = [UInt8]()
            try t.source.produce { got += $0 }
            let floats = got.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let worst = zip(floats, expected[t.name]!).map { abs($0 - $1) / max(abs($1), 1e-3) }.max() ?? 1
            #expect(t.shape == [6, 64] && worst <= 1e-6, "\(t.name): \(worst)")
        }
    }

    @Test func swiftReadsWhatPythonWrites() throws {
        let folder = TemporaryFolder()
        let path = folder.file("p.wpk")
        let (status, _, stderr) = try Self.python(["pack", Fixtures.path("interchange/stored.npz"), path, "--align", "128", "--meta", "who=python"])
        #expect(status == 0, "\(stderr)")
        let store = try WeightStore(path: path, verify: .eager)
        #expect(store.alignment == 128)
        #expect(store.metadata["who"] == "python")
        let expected = InterchangeTests.expected["stored.npz"]!
        for (name, e) in expected {
            let info = try #require(store.info(name))
            #expect(info.shape == e.shape)
            #expect(try InterchangeTests.values(of: info, in: store) == e.values)
        }
    }

    @Test func pythonRefusesADamagedFile() throws {
        let (status, _, stderr) = try Self.python(["verify", Fixtures.vector("bad-tensor-checksum.wpk")])
        #expect(status == 1)
        #expect(stderr.contains("checksum"))
    }
}
