import Foundation
import LazyTensor
import Testing
@testable import WeightStore

/// Crafted stores whose header is valid but whose sizes are hostile: each must end in the named
/// error, never in a trap, an abort or an allocation sized by the file.
@Suite struct StoreHardeningTests {
    typealias Layout = ValidationTests.Layout

    /// Record offset of the tensor called `name` in a sample file.
    static func record(named name: String, in l: Layout) -> Int {
        for i in 0..<l.tensorCount {
            let offset = Int(l.read(UInt32.self, l.record(i))), length = Int(l.read(UInt32.self, l.record(i) + 4))
            let bytes = l.bytes[(l.stringsStart + offset)..<(l.stringsStart + offset + length)]
            if String(decoding: bytes, as: UTF8.self) == name { return l.record(i) }
        }
        fatalError("no record \(name)")
    }

    static func crafted(_ edit: (inout [UInt8], Layout) -> Void) throws -> String {
        var bytes = try ValidationTests.sample()
        edit(&bytes, Layout(bytes: bytes))
        ValidationTests.rehash(&bytes)
        let folder = TemporaryFolder()
        let path = folder.file("c.wpk")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        folders.append(folder)
        return path
    }
    nonisolated(unsafe) static var folders: [TemporaryFolder] = []

    static func put<T: FixedWidthInteger>(_ v: T, _ at: Int, _ b: inout [UInt8]) { ValidationTests.put(v, at: at, in: &b) }

    @Test func aZstdRecordClaimingPetabytesIsRefusedBeforeAllocating() throws {
        // "big" is a compressed [2, 4, 5] float32; make it claim [2^43] elements = 2^45 bytes.
        let path = try Self.crafted { b, l in
            let r = Self.record(named: "big", in: l)
            b[r + 10] = 1
            for d in 0..<8 { Self.put(UInt64(d == 0 ? 1 << 43 : 0), r + 16 + 8 * d, &b) }
            Self.put(UInt64(1) << 45, r + 96, &b)
        }
        let store = try WeightStore(path: path)
        let (_, stats) = Stats.measure {
            #expect(throws: WeightStoreError.self) { try store.verify() }
            #expect(throws: WeightStoreError.self) { _ = try store.tensor("big") }
        }
        #expect(stats.bytesAllocated < 1 << 20)
        do { try store.verify() } catch { #expect(error.rule == "decompressionFailed") }
    }

    @Test func aFrameHonestlyDeclaringMoreThanTheMachineHasIsAClearError() throws {
        // Replace "big"'s frame by one of the same length that declares 2^45 bytes of content
        // (header with an 8-byte content size, then one raw block): frame and record agree, so
        // only the memory cap stands between the file and a 32 TiB allocation.
        let path = try Self.crafted { b, l in
            let r = Self.record(named: "big", in: l)
            let offset = Int(l.read(UInt64.self, r + 80)), stored = Int(l.read(UInt64.self, r + 88))
            var frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xC0, 0x00]
            withUnsafeBytes(of: (UInt64(1) << 45).littleEndian) { frame += $0 }
            let payload = stored - frame.count - 3
            let blockHeader = UInt32(payload << 3 | 1)
            frame += [UInt8(blockHeader & 0xFF), UInt8(blockHeader >> 8 & 0xFF), UInt8(blockHeader >> 16)]
            frame += [UInt8](repeating: 0x55, count: payload)
            b.replaceSubrange(offset..<(offset + stored), with: frame)
            b[r + 10] = 1
            for d in 0..<8 { Self.put(UInt64(d == 0 ? 1 << 43 : 0), r + 16 + 8 * d, &b) }
            Self.put(UInt64(1) << 45, r + 96, &b)
        }
        let store = try WeightStore(path: path)
        do { _ = try store.tensor("big"); Issue.record("decoded") } catch { #expect(error.rule == "decodedTooLarge") }
        // verify streams, so it needs no such block: it finds the frame too short instead.
        do { try store.verify(); Issue.record("verified") } catch { #expect(error.rule == "decompressionFailed") }
    }

    @Test func verifyStreamsCompressedTensorsThroughTheHash() throws {
        let folder = TemporaryFolder()
        let path = folder.file("z.wpk")
        let writer = try WeightStoreWriter(path: path)
        let count = 4 << 20  // 16 MiB of float32, compressing to almost nothing
        try writer.addTensor(name: "zeros", Tensor(shape: [count], scalars: [Float](repeating: 0, count: count)), codec: .zstd)
        try writer.finish()
        let store = try WeightStore(path: path)
        #expect(store.info("zeros")!.storedBytes < 4096)
        let (_, stats) = Stats.measure { try? store.verify() }
        try store.verify()
        #expect(stats.bytesAllocated == 0, "verify must not allocate a tensor-sized block")
        #expect(stats.bytesCopied == 0)
    }

    @Test func trailingBytesAfterTheFrameAreRefused() throws {
        let data = [UInt8](repeating: 7, count: 1000)
        var compressed: [UInt8] = []
        let c = try Zstd.Compressor(level: 3, rawSize: data.count)
        try data.withUnsafeBytes { raw in try c.compress(raw, end: true) { compressed += $0 } }
        let withTail = compressed + [0, 0, 0, 0]
        withTail.withUnsafeBytes { #expect(Zstd.check($0, rawSize: 1000)?.contains("follow") == true) }
        compressed.withUnsafeBytes { #expect(Zstd.check($0, rawSize: 1000) == nil) }
        compressed.withUnsafeBytes { #expect(Zstd.check($0, rawSize: 1 << 40) != nil) }
        Array(compressed.dropLast(3)).withUnsafeBytes { #expect(Zstd.check($0, rawSize: 1000) != nil) }
    }

    @Test func blockPoolRefusesSizesThatCannotRound() {
        #expect(Storage(tryAllocatingByteCount: Int.max - 10) == nil)
        #expect(Storage(tryAllocatingByteCount: Int.max / 2) == nil)
        #expect(Storage(tryAllocatingByteCount: -1) == nil)
    }

    @Test func aNewerMinorVersionWithHugeUnknownSizesOpensOrRefusesCleanly() throws {
        // minor 2 (newer than this reader): the unknown dtype is allowed, but a raw size past Int.max cannot be listed.
        let huge = try Self.crafted { b, l in
            Self.put(UInt16(2), 10, &b)
            let r = Self.record(named: "big", in: l)
            b[r + 8] = 200
            Self.put(UInt64.max, r + 96, &b)
        }
        do { _ = try WeightStore(path: huge); Issue.record("opened") } catch { #expect(error.rule == "sizeOverflow") }

        // A representable size: inspect can list it, reading it is refused by name.
        let listed = try Self.crafted { b, l in
            Self.put(UInt16(2), 10, &b)
            let r = Self.record(named: "big", in: l)
            b[r + 8] = 200
            Self.put(UInt64(1) << 40, r + 96, &b)
        }
        // libFuzzer found it: a float32 record with a codec of a newer minor version was read
        // as if uncompressed, past its stored bytes.
        let unknownCodec = try Self.crafted { b, l in
            Self.put(UInt16(2), 10, &b)
            b[Self.record(named: "big", in: l) + 9] = 77
        }
        let future = try WeightStore(path: unknownCodec)
        #expect(throws: WeightStoreError.unknownCodec(name: "big", code: 77)) { _ = try future.tensor("big") }
        #expect(throws: WeightStoreError.unknownCodec(name: "big", code: 77)) { try future.verify() }

        let store = try WeightStore(path: listed)
        #expect(store.info("big")?.dtype == nil)
        #expect(throws: WeightStoreError.self) { _ = try store.tensor("big") }
        #expect(throws: (any Error).self) { try store.withRawBytes("big") { _ in } }
    }

    @Test func zeroElementTensorsWithHugeDimensionsAreRefused() throws {
        // "layer.bias" is [5]; make it [0, 2^62, 2^62] (0 elements, 0 bytes would be consistent
        // with the raw size if the layout allowed it: the size rule must fire first).
        let path = try Self.crafted { b, l in
            let r = Self.record(named: "layer.bias", in: l)
            b[r + 10] = 3
            Self.put(UInt64(0), r + 16, &b); Self.put(UInt64(1) << 62, r + 24, &b); Self.put(UInt64(1) << 62, r + 32, &b)
            Self.put(UInt64(0), r + 96, &b)
        }
        do { _ = try WeightStore(path: path); Issue.record("opened") } catch { #expect(error.rule == "sizeOverflow") }

        let folder = TemporaryFolder()
        let writer = try WeightStoreWriter(path: folder.file("w.wpk"))
        #expect(throws: WeightStoreError.sizeOverflow(name: "e")) {
            try writer.addTensor(name: "e", dtype: .float32, shape: [0, 1 << 62, 1 << 62], source: .bytes([]))
        }
        #expect(ShapeRules.elementCount([0, 1 << 30, 1 << 30], elementSize: 4) == 0)
        #expect(ShapeRules.elementCount([3, 4], elementSize: 4) == 12)
        #expect(ShapeRules.elementCount([-1], elementSize: 4) == nil)
    }

    @Test func aStoreReadIntoMemoryIsImmuneToItsFileChanging() throws {
        let folder = TemporaryFolder()
        let path = folder.file("s.wpk")
        let expected = try writeSampleStore(to: path)
        let copy = try WeightStore(path: path, access: .readIntoMemory)
        let mapped = try WeightStore(path: path)
        #expect(copy.file.access == .readIntoMemory)
        // Rewritten in place, then cut short: what `cp` onto the same inode does.
        let fd = open(path, O_WRONLY)
        let zeros = [UInt8](repeating: 0, count: 64)
        _ = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 200) }
        close(fd)
        #expect(throws: WeightStoreError.fileChanged(path: path)) { try mapped.checkUnchanged() }
        #expect(truncate(path, 100) == 0)
        #expect(try copy.tensor("layer.weight").scalars == expected["layer.weight"])
        try copy.verify()
        try copy.checkUnchanged()
    }

    @Test func errorsNamingATensorWithControlCharactersStayOneLine() throws {
        // libFuzzer found it: a name "\n" in a record with a reserved field set.
        let path = try Self.crafted { b, l in
            let r = Self.record(named: "layer.bias", in: l)
            let nameAt = l.stringsStart + Int(l.read(UInt32.self, r))
            b[nameAt] = 0x0A
            b[nameAt + 1] = 0x1B
            Self.put(UInt64(7), r + 16 + 8 * 7, &b)
        }
        do { _ = try WeightStore(path: path); Issue.record("opened") } catch {
            let text = "\(error)"
            #expect(!text.unicodeScalars.contains { $0.value < 0x20 }, "\(text.debugDescription)")
            #expect(text.contains("\\n\\u{1B}"), "\(text)")
        }
    }

    @Test func temporariesOfDeadWritersAreSweptAndLiveOnesKept() throws {
        let folder = TemporaryFolder()
        // PIDs above the kernel's maximum (4194304) can never be alive; our own PID is.
        let dead = folder.file(".model.wpk\(FileOutput.temporaryMarker)4194999-12345")
        let live = folder.file(".model.wpk\(FileOutput.temporaryMarker)\(getpid())-12345")
        let unrelated = folder.file(".model.wpk.tmp-4194999-1")
        for path in [dead, live, unrelated] { try Data([1]).write(to: URL(fileURLWithPath: path)) }
        let out = try FileOutput(path: folder.file("model.wpk"))
        try out.write([1, 2, 3])
        try out.commit()
        #expect(Set(folder.contents) == [".model.wpk\(FileOutput.temporaryMarker)\(getpid())-12345", ".model.wpk.tmp-4194999-1", "model.wpk"])
    }
}
