import LazyTensor
import Foundation
import Testing
@testable import WeightStore

/// One crafted file per validation rule of formats/wpk.md: each breaks exactly that rule (hashes
/// are recomputed afterwards unless the rule is about a hash) and must be refused with exactly
/// that rule's error.
@Suite struct ValidationTests {
    /// Offsets into a valid sample file, so a case can name the field it breaks.
    struct Layout {
        let bytes: [UInt8]
        var headerLength: Int { Int(read(UInt64.self, 24)) }
        var tensorCount: Int { Int(read(UInt32.self, 64)) }
        var metadataCount: Int { Int(read(UInt32.self, 68)) }
        func record(_ i: Int) -> Int { 64 + 32 + 128 * i }
        var indexStart: Int { record(tensorCount) }
        var metadataStart: Int { indexStart + 4 * tensorCount }
        func metadataRecord(_ i: Int) -> Int { metadataStart + 32 * i }
        var stringsStart: Int { metadataStart + 32 * metadataCount }
        var headerEnd: Int { 64 + headerLength }
        var dataOffset: Int { Int(read(UInt64.self, 64 + 16)) }
        func read<T: FixedWidthInteger>(_: T.Type, _ offset: Int) -> T {
            bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        }
    }

    static func put<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
    }

    /// Recomputes the header hash (preamble and footer copies) and the preamble hash.
    static func rehash(_ bytes: inout [UInt8]) {
        let layout = Layout(bytes: bytes)
        let end = min(layout.headerEnd, bytes.count)
        if end > 64 {
            let h = Checksum.xxh3(Array(bytes[64..<end]))
            put(h, at: 32, in: &bytes)
            if bytes.count >= 32 { put(h, at: bytes.count - 32, in: &bytes) }
        }
        put(Checksum.xxh3(Array(bytes[0..<56])), at: 56, in: &bytes)
    }

    static func sample() throws -> [UInt8] {
        let folder = TemporaryFolder()
        try writeSampleStore(to: folder.file("s.wpk"), compress: true)
        return Array(try Data(contentsOf: URL(fileURLWithPath: folder.file("s.wpk"))))
    }

    /// Opens `bytes` as a file and returns the rule it was refused for (nil if it opened).
    static func openError(_ bytes: [UInt8]) -> WeightStoreError? {
        let folder = TemporaryFolder()
        let path = folder.file("c.wpk")
        try! Data(bytes).write(to: URL(fileURLWithPath: path))
        do { _ = try WeightStore(path: path); return nil } catch { return error }
    }

    typealias Edit = @Sendable (inout [UInt8], Layout) -> Void

    static let cases: [(rule: String, rehash: Bool, edit: Edit)] = [
        ("fileTooSmall", false, { b, _ in b = Array(WPKFormat.magic) + [UInt8](repeating: 0, count: 60) }),
        ("notAWpkFile", false, { b, _ in b[1] = UInt8(ascii: "X") }),
        ("badEndianMark", true, { b, _ in put(UInt32(0x0D0C_0B0A), at: 12, in: &b) }),
        ("unsupportedMajorVersion", true, { b, _ in put(UInt16(2), at: 8, in: &b) }),
        ("preambleChecksumMismatch", false, { b, _ in b[20] ^= 1 }),
        ("reservedFieldNotZero", true, { b, _ in put(UInt32(1), at: 52, in: &b) }),
        ("unknownCriticalFlags", true, { b, _ in put(UInt32(4), at: 16, in: &b) }),
        ("invalidAlignment", true, { b, _ in put(UInt32(96), at: 48, in: &b) }),
        ("invalidAlignment", true, { b, _ in put(UInt32(2 << 20), at: 48, in: &b) }),
        ("fileSizeMismatch", false, { b, _ in b.append(0) }),
        ("fileSizeMismatch", false, { b, _ in b.removeLast(100) }),
        ("footerMismatch", false, { b, _ in b[b.count - 1] ^= 0xFF }),
        ("footerMismatch", false, { b, _ in b[b.count - 32] ^= 0xFF }),
        ("footerMismatch", true, { b, _ in put(UInt64(b.count + 1), at: b.count - 24, in: &b) }),
        ("reservedFieldNotZero", false, { b, _ in put(UInt64(1), at: b.count - 16, in: &b) }),
        ("headerLengthOutOfBounds", true, { b, _ in put(UInt64(1) << 40, at: 24, in: &b) }),
        ("headerLengthOutOfBounds", true, { b, _ in put(UInt64(8), at: 24, in: &b) }),
        ("headerChecksumMismatch", false, { b, l in b[l.stringsStart] ^= 1 }),
        ("countsExceedHeader", true, { b, _ in put(UInt32(1_000_000), at: 64, in: &b) }),
        ("countsExceedHeader", true, { b, _ in put(UInt32.max, at: 68, in: &b) }),
        ("headerLengthMismatch", true, { b, _ in put(UInt64(3), at: 64 + 8, in: &b) }),
        ("headerLengthMismatch", true, { b, _ in put(UInt64.max, at: 64 + 8, in: &b) }),
        ("dataOffsetInvalid", true, { b, l in put(UInt64(l.dataOffset + 64), at: 64 + 16, in: &b) }),
        ("dataLengthMismatch", true, { b, _ in put(UInt64(1), at: 64 + 24, in: &b) }),
        ("nonZeroPadding", true, { b, l in b[l.headerEnd] = 7 }),
        ("stringOutOfBounds", true, { b, l in put(UInt32(0xFF_FFFF), at: l.record(0), in: &b) }),
        ("stringOutOfBounds", true, { b, l in put(UInt32.max, at: l.record(0) + 4, in: &b) }),
        ("invalidName", true, { b, l in put(UInt32(0), at: l.record(0) + 4, in: &b) }),
        ("invalidName", true, { b, l in b[l.stringsStart + Int(l.read(UInt32.self, l.record(0)))] = 0xFF }),
        ("invalidName", true, { b, l in b[l.stringsStart + Int(l.read(UInt32.self, l.record(0)))] = 0 }),
        ("invalidNameIndex", true, { b, l in
            let first = l.read(UInt32.self, l.indexStart), second = l.read(UInt32.self, l.indexStart + 4)
            put(second, at: l.indexStart, in: &b); put(first, at: l.indexStart + 4, in: &b)
        }),
        ("invalidNameIndex", true, { b, l in put(UInt32(99), at: l.indexStart, in: &b) }),
        ("invalidNameIndex", true, { b, l in put(l.read(UInt32.self, l.indexStart), at: l.indexStart + 4, in: &b) }),
        ("duplicateName", true, { b, l in
            // Give the record listed second in the index the name of the one listed first.
            let first = l.record(Int(l.read(UInt32.self, l.indexStart)))
            let second = l.record(Int(l.read(UInt32.self, l.indexStart + 4)))
            for i in 0..<8 { b[second + i] = b[first + i] }
        }),
        ("invalidMetadata", true, { b, l in b[l.metadataRecord(0) + 8] = 9 }),
        ("invalidMetadata", true, { b, l in
            // an int record turned into a bool with value 5
            let r = (0..<l.metadataCount).first { b[l.metadataRecord($0) + 8] == 2 }!
            b[l.metadataRecord(r) + 8] = 4; put(UInt64(5), at: l.metadataRecord(r) + 16, in: &b)
        }),
        ("duplicateMetadataKey", true, { b, l in for i in 0..<8 { b[l.metadataRecord(1) + i] = b[l.metadataRecord(0) + i] } }),
        ("unknownDType", true, { b, l in b[l.record(0) + 8] = 99 }),
        ("unknownCodec", true, { b, l in b[l.record(0) + 9] = 7 }),
        ("rankTooLarge", true, { b, l in b[l.record(0) + 10] = 9 }),
        ("reservedFieldNotZero", true, { b, l in put(UInt64(3), at: l.record(0) + 16 + 8 * 7, in: &b) }),
        ("reservedFieldNotZero", true, { b, l in b[l.record(0) + 11] = 1 }),
        ("sizeOverflow", true, { b, l in
            b[l.record(0) + 10] = 2
            put(UInt64(1) << 62, at: l.record(0) + 16, in: &b); put(UInt64(16), at: l.record(0) + 24, in: &b)
        }),
        ("rawSizeMismatch", true, { b, l in put(l.read(UInt64.self, l.record(0) + 96) + 4, at: l.record(0) + 96, in: &b) }),
        ("storedSizeMismatch", true, { b, l in put(l.read(UInt64.self, l.record(0) + 88) + 4, at: l.record(0) + 88, in: &b) }),
        ("misalignedOffset", true, { b, l in put(l.read(UInt64.self, l.record(1) + 80) + 4, at: l.record(1) + 80, in: &b) }),
        ("layoutMismatch", true, { b, l in put(l.read(UInt64.self, l.record(1) + 80) + 64, at: l.record(1) + 80, in: &b) }),
        ("layoutMismatch", true, { b, l in put(l.read(UInt64.self, l.record(1) + 80) - 64, at: l.record(1) + 80, in: &b) }),
        ("compressedBeforeMappable", true, { b, l in b[l.record(0) + 9] = 1 }),
        ("tensorOutOfBounds", true, { b, l in
            let last = l.record(l.tensorCount - 1)  // the zstd tensor: stored size is free
            put(UInt64(1) << 40, at: last + 88, in: &b)
        }),
    ]

    @Test(arguments: cases.indices)
    func craftedFileIsRefusedForItsRule(index: Int) throws {
        let (rule, rehash, edit) = Self.cases[index]
        var bytes = try Self.sample()
        edit(&bytes, Layout(bytes: bytes))
        if rehash { Self.rehash(&bytes) }
        let error = try #require(Self.openError(bytes), "case \(index) (\(rule)) opened without error")
        #expect(error.rule == rule, "case \(index): expected \(rule), got \(error)")
        #expect(!error.description.isEmpty)
    }

    @Test func theSampleItselfIsValid() throws {
        #expect(Self.openError(try Self.sample()) == nil)
    }

    @Test func gitLFSPointerGetsAClearMessage() {
        let pointer = Array("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 90868376\n".utf8)
        let error = Self.openError(pointer)
        #expect(error?.rule == "notAWpkFile")
        #expect(error?.description.contains("git-LFS") == true)
    }

    @Test func safetensorsFileGetsAClearMessage() throws {
        let error = Self.openError(Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("digits-cnn/digits_cnn.safetensors")))))
        #expect(error?.description.contains("safetensors") == true)
    }

    @Test func emptyFileIsTooSmall() {
        #expect(Self.openError([])?.rule == "fileTooSmall")
    }

    /// A newer minor version may use reserved fields and add dtypes: it still opens, and only
    /// the tensors this reader cannot understand fail, when touched.
    @Test func newerMinorVersionOpensAndIgnoresWhatItAdds() throws {
        var bytes = try Self.sample()
        let l = Layout(bytes: bytes)
        Self.put(UInt16(7), at: 10, in: &bytes)        // minor 7
        Self.put(UInt32(5), at: 52, in: &bytes)        // reserved preamble field
        Self.put(UInt32(0x10), at: 20, in: &bytes)     // unknown compatible flag
        let ids = (0..<l.tensorCount).first { bytes[l.record($0) + 8] == DType.int64.rawValue }!
        bytes[l.record(ids) + 8] = 42                  // a dtype from the future
        Self.rehash(&bytes)
        let folder = TemporaryFolder()
        try Data(bytes).write(to: URL(fileURLWithPath: folder.file("n.wpk")))
        let store = try WeightStore(path: folder.file("n.wpk"))
        #expect(store.version.minor == 7)
        #expect(store.info("ids")?.dtype == nil)
        #expect(throws: WeightStoreError.self) { try store.tensor("ids") }
        #expect(try store.tensor("layer.bias").scalars.count == 5)
    }

    @Test func damagedTensorIsNamedByVerify() throws {
        let folder = TemporaryFolder()
        let path = folder.file("v.wpk")
        try writeSampleStore(to: path)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let store0 = try WeightStore(path: path)
        let bias = store0.info("layer.bias")!
        bytes[bias.offset + 3] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let lazy = try WeightStore(path: path)                    // verify mode none: opens, reads
        #expect(try lazy.tensor("layer.bias").scalars.count == 5)
        #expect(throws: WeightStoreError.checksumMismatch(name: "layer.bias")) { try lazy.verify() }

        let touching = try WeightStore(path: path, verify: .onFirstTouch)
        #expect(try touching.tensor("layer.weight").scalars.count == 12)
        #expect(throws: WeightStoreError.checksumMismatch(name: "layer.bias")) { try touching.tensor("layer.bias") }

        #expect(throws: WeightStoreError.checksumMismatch(name: "layer.bias")) {
            try WeightStore(path: path, verify: .eager)
        }
    }

    @Test func nonZeroPaddingBetweenTensorsIsFoundByVerify() throws {
        let folder = TemporaryFolder()
        let path = folder.file("p.wpk")
        try writeSampleStore(to: path)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let store0 = try WeightStore(path: path)
        let first = store0.infos[0]
        let gap = first.offset + first.storedBytes
        #expect(gap < store0.infos[1].offset, "sample needs padding after its first tensor")
        bytes[gap] = 1
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let store = try WeightStore(path: path)
        #expect(throws: WeightStoreError.nonZeroPadding(offset: UInt64(gap))) { try store.verify() }
    }

    @Test func damagedCompressedTensorIsRefusedOnAccess() throws {
        let folder = TemporaryFolder()
        let path = folder.file("z.wpk")
        try writeSampleStore(to: path, compress: true)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let info = try WeightStore(path: path).info("big")!
        bytes[info.offset + info.storedBytes / 2] ^= 0x5A
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let store = try WeightStore(path: path)
        do {
            _ = try store.tensor("big")
            Issue.record("damaged zstd data was accepted")
        } catch {
            #expect(["checksumMismatch", "decompressionFailed"].contains(error.rule))
        }
    }

    @Test func unknownNamesAreClearErrorsAndIntegerTensorsAreViews() throws {
        let folder = TemporaryFolder()
        try writeSampleStore(to: folder.file("s.wpk"))
        let store = try WeightStore(path: folder.file("s.wpk"))
        #expect(throws: WeightStoreError.tensorNotFound("nope")) { try store.tensor("nope") }
        #expect(store.info("nope") == nil)
        // int64 ids are a zero-copy view of the mapping, exact.
        let (ids, stats) = try Stats.measure { try store.tensor("ids") }
        #expect(ids.dtype == .int64 && ids.integers == [1, 2, 3])
        #expect(stats.bytesAllocated == 0 && stats.bytesCopied == 0)
        #expect(ids.sharesStorage(with: try store.tensor("layer.weight")))
        // A type no tensor holds is refused by name.
        let writer = try WeightStoreWriter(path: folder.file("b.wpk"))
        try writer.addTensor(name: "flags", dtype: .bool, shape: [2], source: .bytes([0, 1]))
        try writer.finish()
        #expect(throws: WeightStoreError.notFloatingPoint(name: "flags", dtype: "bool")) {
            try WeightStore(path: folder.file("b.wpk")).tensor("flags")
        }
    }
}
