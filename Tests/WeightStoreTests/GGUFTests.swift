import Foundation
import LazyTensor
import Testing
@testable import WeightStore

/// GGUF import against llama.cpp's own writer and decoder (the fixture is written and decoded
/// by the `gguf` package: tools/fixtures/make_gguf_fixture.py), and the reader's strictness on
/// files built byte by byte.
@Suite struct GGUFTests {
    let folder = TemporaryFolder()
    /// Parsed per test, not kept in a static: LeakSanitizer reports the indirect enum payloads
    /// a lazily initialised global holds at exit as leaks.
    static func expected() throws -> JSONValue {
        try JSONValue.parse(String(contentsOfFile: Fixtures.path("gguf/expected.json"), encoding: .utf8))
    }

    /// Packs the fixture as `wpack pack` does and opens the result.
    func packed(policy: HalfPolicy) throws -> (InputBundle, WeightStore) {
        let bundle = try InputReader.read(path: Fixtures.path("gguf/tiny.gguf"), policy: policy)
        let path = folder.file("tiny.wpk")
        let writer = try WeightStoreWriter(path: path)
        for (key, value) in bundle.metadata { try writer.setMetadata(key, value) }
        for t in bundle.tensors { try writer.addTensor(name: t.name, dtype: t.dtype, shape: t.shape, source: t.source) }
        try writer.finish()
        return (bundle, try WeightStore(path: path, verify: .eager))
    }

    @Test func everyTypeDecodesAsGGUFDoes() throws {
        let (bundle, store) = try packed(policy: .keep)
        let tensors = try Self.expected()["tensors"]!.pairs!
        #expect(bundle.tensors.map(\.name) == tensors.map(\.0))
        for (name, want) in tensors {
            let info = try #require(store.info(name))
            #expect(info.dtype.map { "\($0)" } == want["dtype"]!.string!, "\(name)")
            #expect(info.shape == want["shape"]!.array!.map { $0.exactInt! }, "\(name)")
            let values = want["values"]!.array!.map { Float($0.double!) }
            if info.dtype == .int32 {
                let ids = try store.withRawBytes(name) { Array($0.bindMemory(to: Int32.self)) }
                #expect(ids.map(Float.init) == values)
            } else {
                // Bit for bit, K-quants included: the arithmetic is ggml's.
                #expect(try store.tensor(name).scalars == values, "\(name)")
            }
        }
        #expect(bundle.notes.count == 2 && bundle.notes.allSatisfy { $0.contains("widened to float32") })
    }

    @Test func blockTensorsStayBlocksAndMapInPlace() throws {
        let (_, store) = try packed(policy: .widen)
        // Halves follow the pack policy; blocks are kept whatever it is, as the GEMM reads them.
        #expect(store.info("f16")?.dtype == .float32 && store.info("bf16")?.dtype == .float32)
        for name in ["q8_0", "q4_0", "q4_1"] {
            let view = try store.codedTensor(name)
            let raw = try store.withRawBytes(name) { UInt(bitPattern: $0.baseAddress) }
            #expect(UInt(bitPattern: view.storage.baseAddress) == raw, "\(name) is not a view of the mapping")
        }
    }

    @Test func metadataKeepsEveryValueType() throws {
        let (_, store) = try packed(policy: .keep)
        for (key, want) in try Self.expected()["metadata"]!.pairs! {
            let got = try #require(store.metadataValue(key), "\(key) missing")
            switch (want, got) {
            case let (.array, .string(text)): #expect(try JSONValue.parse(text) == want, "\(key): \(text)")
            case let (.string(s), _): #expect(got.description == s, "\(key)")
            case let (.bool(b), .bool(g)): #expect(b == g)
            case let (.integer(i), .int(g)): #expect(Int64(i) == g, "\(key)")
            case let (.number(d), .double(g)): #expect(d == g, "\(key)")
            default: Issue.record("\(key): expected \(want), got \(got)")
            }
        }
    }

    // MARK: strictness, on files built here

    /// A minimal GGUF: the given metadata entries and tensors, then the data.
    struct Builder {
        var version: UInt32 = 3
        var keys: [(String, UInt32, [UInt8])] = []
        var tensors: [(name: String, dims: [UInt64], type: UInt32, offset: UInt64)] = []
        var data: [UInt8] = []
        var alignment = 32

        static func string(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }
        static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

        var bytes: [UInt8] {
            var out = Array("GGUF".utf8) + Self.le(version) + Self.le(UInt64(tensors.count)) + Self.le(UInt64(keys.count))
            for (key, type, value) in keys { out += Self.string(key) + Self.le(type) + value }
            for t in tensors {
                out += Self.string(t.name) + Self.le(UInt32(t.dims.count))
                for d in t.dims { out += Self.le(d) }
                out += Self.le(t.type) + Self.le(t.offset)
            }
            out += [UInt8](repeating: 0, count: (alignment - out.count % alignment) % alignment)
            return out + data
        }

        /// One float32 [2, 4] tensor and a string key: a valid file.
        static var valid: Builder {
            var b = Builder()
            b.keys = [("general.architecture", 8, string("llama"))]
            b.tensors = [("w", [4, 2], 0, 0)]
            b.data = (0..<8).flatMap { le(Float(Float($0)).bitPattern) }
            return b
        }
    }

    func refusal(_ b: Builder) -> String? {
        refusal(b.bytes)
    }

    func refusal(_ bytes: [UInt8]) -> String? {
        let path = folder.file("m.gguf")
        try! Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            _ = try InputReader.read(path: path)
            return nil
        } catch {
            let text = "\(error)"
            #expect(!text.contains("\n"))
            return text
        }
    }

    @Test func theValidFileReads() throws {
        #expect(refusal(Builder.valid) == nil)
        let path = folder.file("v.gguf")
        try Data(Builder.valid.bytes).write(to: URL(fileURLWithPath: path))
        let bundle = try InputReader.read(path: path)
        #expect(bundle.tensors.map(\.shape) == [[2, 4]])
    }

    @Test func everyTruncationIsAnError() {
        let bytes = Builder.valid.bytes
        for n in 0..<bytes.count { #expect(refusal(Array(bytes.prefix(n))) != nil, "prefix \(n) was accepted") }
    }

    @Test func headerRules() {
        func refused(_ change: (inout Builder) -> Void, _ phrase: String, sourceLocation: SourceLocation = #_sourceLocation) {
            var b = Builder.valid
            change(&b)
            let text = refusal(b)
            #expect(text?.contains(phrase) == true, "\(text ?? "accepted")", sourceLocation: sourceLocation)
        }
        refused({ $0.version = 1 }, "version 1 is not supported")
        refused({ $0.version = 4 }, "unsupported GGUF version 4")
        refused({ $0.keys.append(("general.architecture", 8, Builder.string("gpt2"))) }, "given twice")
        refused({ $0.tensors.append(("w", [4, 2], 0, 64)) }, "listed twice")
        refused({ $0.tensors[0].type = 6 }, "Q5_0 (type 6)")
        refused({ $0.tensors[0].type = 99 }, "unknown type 99")
        refused({ $0.tensors[0].offset = 4 }, "not a multiple of the alignment")
        refused({ $0.tensors[0].dims = [4, 3] }, "reaches past the end")
        refused({ $0.tensors[0].dims = [] }, "0 dimensions")
        refused({ $0.tensors[0].dims = [1, 1, 1, 1, 1] }, "5 dimensions")
        refused({ $0.tensors[0].dims = [UInt64.max, 2] }, "too large")
        refused({ $0.tensors[0].type = 8; $0.tensors[0].dims = [4, 2] }, "not whole blocks of 32")
        refused({ $0.tensors[0].type = 14; $0.tensors[0].dims = [32, 2] }, "not whole blocks of 256")
        refused({ $0.tensors.append(("v", [4], 0, 0)) }, "overlaps")
        refused({ $0.keys.append(("flag", 7, [2])) }, "bool stored as 2")
        refused({ $0.keys.append(("x", 13, [0])) }, "unknown value type 13")
        refused({ $0.keys.append(("nested", 9, Builder.le(UInt32(9)) + Builder.le(UInt64(1)))) }, "array of arrays")
        refused({ $0.keys.append(("many", 9, Builder.le(UInt32(4)) + Builder.le(UInt64(1) << 40))) }, "cannot fit")
        refused({ $0.keys.append(("", 8, Builder.string("x"))) }, "is empty")
        refused({ $0.keys.append(("bad", 8, Builder.le(UInt64(2)) + [0xC3, 0x28])) }, "not valid UTF-8")
        refused({ $0.keys.append(("general.alignment", 4, Builder.le(UInt32(48)))) }, "not a power of two")
        refused({ $0.keys.append(("general.alignment", 5, Builder.le(Int32(64)))) }, "must be a uint32")
        refused({ b in
            var bytes = Builder.le(UInt64(1) << 50)
            bytes += [1]
            b.keys.append(("long", 8, bytes))
        }, "claims")
        // Forged counts are bounded by the file before any loop or allocation.
        var b = Builder.valid.bytes
        b.replaceSubrange(8..<16, with: Builder.le(UInt64.max))
        #expect(refusal(b)?.contains("cannot fit") == true)
        b = Builder.valid.bytes
        b[0] = UInt8(ascii: "X")
        #expect(refusal(b)?.contains("not a GGUF file") == true)
    }

    @Test func alignmentKeyMovesTheData() throws {
        var b = Builder.valid
        b.keys.append(("general.alignment", 4, Builder.le(UInt32(64))))
        b.alignment = 64
        #expect(refusal(b) == nil)
        // A tensor offset that suits the default alignment but not the declared one.
        b.tensors.append(("v", [8], 0, 32))
        b.data += [UInt8](repeating: 0, count: 32)
        #expect(refusal(b)?.contains("not a multiple of the alignment 64") == true)
    }
}
