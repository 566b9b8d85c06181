import Foundation
import LazyTensor
import Testing
@testable import WeightStore

/// The readers of other formats are as strict as their reference implementations: what NumPy,
/// zipfile or safetensors refuse, wpack refuses with one clear line; where NumPy has a rule
/// (a repeated header key takes its last value) wpack follows it.
@Suite struct InterchangeStrictnessTests {
    let folder = TemporaryFolder()

    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = folder.file(name)
        try! Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    /// The error reading `bytes` as `name`, which must be one line.
    func refusal(_ name: String, _ bytes: [UInt8]) -> String? {
        do {
            _ = try InputReader.read(path: write(name, bytes))
            return nil
        } catch {
            let text = "\(error)"
            #expect(!text.contains("\n"), "multi-line error: \(text.debugDescription)")
            #expect(!text.unicodeScalars.contains { $0.value < 0x20 }, "raw control character: \(text.debugDescription)")
            return text
        }
    }

    static func safetensors(_ json: String, data: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { bytes += $0 }
        return bytes + Array(json.utf8) + data
    }

    // MARK: safetensors

    @Test func safetensorsShapesAndOffsetsMustBeExactIntegers() {
        let eight = [UInt8](repeating: 0, count: 16)
        let cases: [(String, String)] = [
            (#"{"x":{"dtype":"F32","shape":[4.7],"data_offsets":[0,16]}}"#, "non-negative integers"),
            (#"{"x":{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}}"#, "non-negative integers"),
            (#"{"x":{"dtype":"F32","shape":[true,4],"data_offsets":[0,16]}}"#, "non-negative integers"),
            (#"{"x":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#, "non-negative integers"),
            (#"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0.0,16]}}"#, "data_offsets"),
            (#"{"x":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}}"#, "data_offsets"),
            (#"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"extra":1}}"#, "unknown field"),
            (#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"x":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, "twice"),
            (#"{"x":{"dtype":"F32","dtype":"F16","shape":[4],"data_offsets":[0,16]}}"#, "twice"),
            (#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, "overlaps"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, "belong to no tensor"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, "after the last tensor"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#, "belong to no tensor"),
            (#"{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, "not a string"),
            ("[1]", "does not start with '{'"),
        ]
        for (json, phrase) in cases {
            let error = refusal("s.safetensors", Self.safetensors(json, data: eight))
            #expect(error?.contains(phrase) == true, "\(json): \(error ?? "accepted")")
        }
        // The same files, made consistent, are read.
        #expect(refusal("ok.safetensors", Self.safetensors(
            #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
            data: eight)) == nil)
    }

    @Test func safetensorsBoolBytesAreZeroOrOne() throws {
        let json = #"{"m":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}}"#
        #expect(refusal("b.safetensors", Self.safetensors(json, data: [0, 1, 1, 0])) == nil)
        let error = refusal("b.safetensors", Self.safetensors(json, data: [0, 1, 2, 0]))
        #expect(error?.contains("BOOL element 2 is 2") == true, "\(error ?? "accepted")")
    }

    @Test func namesWithControlCharactersAreEscapedInErrors() {
        let json = "{\"bad\\u001b[2J\\nname\":{\"dtype\":\"F8_E5M2\",\"shape\":[1],\"data_offsets\":[0,1]}}"
        let error = refusal("e.safetensors", Self.safetensors(json, data: [0]))
        #expect(error?.contains("bad\\u{1B}[2J\\nname") == true, "\(error ?? "accepted")")
    }

    @Test func unpackingATensorNamedMetadataToSafetensorsIsRefused() throws {
        let path = folder.file("m.wpk")
        let writer = try WeightStoreWriter(path: path)
        try writer.addTensor(name: "__metadata__", Tensor(shape: [2], scalars: [1, 2]))
        try writer.finish()
        let store = try WeightStore(path: path)
        #expect(throws: InterchangeError.self) { try Safetensors.write(store, to: folder.file("m.safetensors")) }
        #expect(!FileManager.default.fileExists(atPath: folder.file("m.safetensors")))
    }

    // MARK: npy

    static func npy(_ dict: String, data: [UInt8]) -> [UInt8] {
        var header = Array(dict.utf8)
        header += [UInt8](repeating: 0x20, count: (64 - (10 + header.count + 1) % 64) % 64) + [0x0A]
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)] + header + data
    }

    @Test func aRepeatedNpyKeyTakesItsLastValueAsNumPyDoes() throws {
        // Big-endian 1.0 and 2.0, described first as little-endian, then as big-endian.
        let data: [UInt8] = [0x3F, 0x80, 0, 0, 0x40, 0, 0, 0]
        let path = write("d.npy", Self.npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'descr': '>f4'}", data: data))
        let tensor = try ArrayFile.readNpy(path: path)
        #expect(tensor.scalars == [1, 2])
    }

    @Test func npyHeadersAreParsedAsPythonLiterals() {
        let four = [UInt8](repeating: 0, count: 16)
        let cases: [(String, String)] = [
            ("{'descr': '<f4', 'fortran_order': False}", "exactly the keys"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'extra': 1}", "exactly the keys"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (4)}", "not a tuple"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (True, 4)}", "non-negative integers"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-4,)}", "non-negative integers"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (4,)}", "fortran_order"),
            ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,)}", "structured"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), ", "malformed"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "follow the array data"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (8,)}", "truncated"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4611686018427387904)}", "too large"),
            ("{'descr': '<f4',\n 'fortran_order': False, 'shape': (4,), \u{1B}[2J}", "malformed"),
        ]
        for (dict, phrase) in cases {
            let error = refusal("h.npy", Self.npy(dict, data: four))
            #expect(error?.contains(phrase) == true, "\(dict.debugDescription): \(error ?? "accepted")")
        }
        #expect(refusal("ok.npy", Self.npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4L,), }", data: four)) == nil)
        #expect(refusal("ok.npy", Self.npy("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 2)}", data: four)) == nil)
        let error = refusal("b.npy", Self.npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,)}", data: [1, 7]))
        #expect(error?.contains("bool element 1 is 7") == true, "\(error ?? "accepted")")
    }

    // MARK: npz

    /// A zip of stored members, with the knobs the tests turn.
    static func zip(_ members: [(String, [UInt8])], countOverride: UInt16? = nil, crcFlip: Bool = false) -> [UInt8] {
        var out = ByteSink(), central = ByteSink()
        for (name, data) in members {
            let nameBytes = Array(name.utf8)
            var crc = data.withUnsafeBytes { Npz.crc32($0) }
            if crcFlip { crc ^= 1 }
            let offset = UInt32(out.count)
            out.write(UInt32(0x0403_4B50)); out.write(UInt16(20)); out.write(UInt16(0)); out.write(UInt16(0))
            out.write(UInt32(0)); out.write(crc); out.write(UInt32(data.count)); out.write(UInt32(data.count))
            out.write(UInt16(nameBytes.count)); out.write(UInt16(0)); out.write(nameBytes); out.write(data)
            central.write(UInt32(0x0201_4B50)); central.write(UInt16(20)); central.write(UInt16(20))
            central.write(UInt16(0)); central.write(UInt16(0)); central.write(UInt32(0)); central.write(crc)
            central.write(UInt32(data.count)); central.write(UInt32(data.count)); central.write(UInt16(nameBytes.count))
            central.write(UInt16(0)); central.write(UInt16(0)); central.write(UInt16(0)); central.write(UInt16(0))
            central.write(UInt32(0)); central.write(offset); central.write(nameBytes)
        }
        let directoryOffset = UInt32(out.count)
        out.write(central.bytes)
        let count = countOverride ?? UInt16(members.count)
        out.write(UInt32(0x0605_4B50)); out.write(UInt16(0)); out.write(UInt16(0)); out.write(count); out.write(count)
        out.write(UInt32(central.count)); out.write(directoryOffset); out.write(UInt16(0))
        return out.bytes
    }

    static var member: [UInt8] { npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", data: [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40]) }

    @Test func npzMembersAreCheckedAgainstTheirCRC() throws {
        #expect(refusal("ok.npz", Self.zip([("a.npy", Self.member)])) == nil)
        let error = refusal("crc.npz", Self.zip([("a.npy", Self.member)], crcFlip: true))
        #expect(error?.contains("CRC-32") == true, "\(error ?? "accepted")")
        // One flipped data byte in a real archive.
        var real = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("interchange/stored.npz"))))
        real[200] ^= 0x40
        #expect(refusal("flip.npz", real) != nil)
    }

    @Test func theCentralDirectoryIsReadByItsExtentNotTheEndRecordsCount() throws {
        // As Python's zipfile does: the directory's entries are read, the count only noted.
        let path = write("count.npz", Self.zip([("a.npy", Self.member), ("b.npy", Self.member)], countOverride: 0))
        let bundle = try InputReader.read(path: path)
        #expect(bundle.tensors.map(\.name) == ["a", "b"])
        #expect(bundle.notes.contains { $0.contains("counts 0 members, its central directory holds 2") }, "\(bundle.notes)")
        let twice = refusal("twice.npz", Self.zip([("a.npy", Self.member), ("a.npy", Self.member)]))
        #expect(twice?.contains("appears twice") == true, "\(twice ?? "accepted")")
    }

    @Test func aZip64LocatorPointingPastTheFileIsRefused() {
        var bytes = Self.zip([("a.npy", Self.member)])
        // Turn the end record into a zip64 one whose locator offset is 2^63.
        let eocd = bytes.count - 22
        var locator = ByteSink()
        locator.write(UInt32(0x0706_4B50)); locator.write(UInt32(0)); locator.write(UInt64(1) << 63); locator.write(UInt32(1))
        bytes.insert(contentsOf: locator.bytes, at: eocd)
        let end = bytes.count - 22
        for i in 0..<4 { bytes[end + 16 + i] = 0xFF }
        let error = refusal("z64.npz", bytes)
        #expect(error?.contains("zip64") == true, "\(error ?? "accepted")")

        // The smallest such archive: a locator and an end record, nothing else, so the zip64
        // end record could not fit before the locator at all (this trapped on a negative bound).
        var tiny = ByteSink()
        tiny.write(UInt32(0x0706_4B50)); tiny.write(UInt32(0)); tiny.write(UInt64(0)); tiny.write(UInt32(1))
        tiny.write(UInt32(0x0605_4B50)); tiny.write(UInt16(0)); tiny.write(UInt16(0))
        tiny.write(UInt16(0xFFFF)); tiny.write(UInt16(0xFFFF)); tiny.write(UInt32(0)); tiny.write(UInt32(0)); tiny.write(UInt16(0))
        let small = refusal("tiny.npz", tiny.bytes)
        #expect(small?.contains("zip64 end record offset 0 is outside the file") == true, "\(small ?? "accepted")")
    }

    @Test func aDeflatedMemberClaimingMoreThanDeflateCanProduceIsRefused() throws {
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("interchange/deflated.npz"))))
        // Every central directory entry claims 4,000,000,000 uncompressed bytes.
        var position = 0
        while let found = (position..<(bytes.count - 4)).first(where: { bytes[$0] == 0x50 && bytes[$0 + 1] == 0x4B && bytes[$0 + 2] == 1 && bytes[$0 + 3] == 2 }) {
            withUnsafeBytes(of: UInt32(4_000_000_000).littleEndian) { for (i, b) in $0.enumerated() { bytes[found + 24 + i] = b } }
            position = found + 4
        }
        let (error, stats) = Stats.measure { refusal("claim.npz", bytes) }
        #expect(error?.contains("more than deflate can produce") == true, "\(error ?? "accepted")")
        #expect(stats.bytesAllocated < 1 << 20)
    }
}
