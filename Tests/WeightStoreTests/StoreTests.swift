import Foundation
import LazyTensor
import Testing
@testable import WeightStore

@Suite struct StoreTests {
    @Test(arguments: [64, 128, 4096, 1 << 20])
    func roundTripKeepsNamesShapesValuesAndAlignment(alignment: Int) throws {
        let folder = TemporaryFolder()
        let path = folder.file("a.wpk")
        let values = try writeSampleStore(to: path, alignment: alignment)
        let store = try WeightStore(path: path)
        #expect(store.tensorNames == ["layer.weight", "layer.bias", "big", "ids"])
        #expect(store.alignment == alignment)
        for info in store.infos { #expect(info.offset % alignment == 0) }
        #expect(store.info("layer.weight")?.shape == [3, 4])
        #expect(store.info("big")?.shape == [2, 4, 5])
        for (name, expected) in values { #expect(try store.tensor(name).scalars == expected) }
        #expect(store.metadata == ["model": "sample", "layers": "2"])
        #expect(store.metadataValue("layers") == .int(2))
        try store.withRawBytes("ids") { raw in
            #expect(Array(raw.bindMemory(to: Int64.self)) == [1, 2, 3])
        }
        try store.verify()
    }

    @Test func rankZeroToEightAndZeroSizedDimensions() throws {
        let folder = TemporaryFolder()
        let path = folder.file("r.wpk")
        let writer = try WeightStoreWriter(path: path)
        try writer.addTensor(name: "scalar", Tensor(shape: [], scalars: [4.5]))
        try writer.addTensor(name: "rank8", Tensor(shape: [1, 2, 1, 2, 1, 2, 1, 2], scalars: floats(16, seed: 9)))
        try writer.addTensor(name: "empty", Tensor(shape: [3, 0, 2], scalars: []))
        try writer.addTensor(name: "after", Tensor(shape: [2], scalars: [1, 2]))
        #expect(throws: WeightStoreError.rankTooLarge(name: "rank9", rank: 9)) {
            try writer.addTensor(name: "rank9", dtype: .float32, shape: [Int](repeating: 1, count: 9), source: .bytes([0, 0, 0, 0]))
        }
        try writer.finish()
        let store = try WeightStore(path: path)
        #expect(try store.tensor("scalar").scalars == [4.5])
        #expect(try store.tensor("scalar").shape == [])
        #expect(try store.tensor("rank8").scalars == floats(16, seed: 9))
        #expect(try store.tensor("empty").scalars == [])
        #expect(store.info("empty")?.storedBytes == 0)
        #expect(try store.tensor("after").scalars == [1, 2])
        try store.verify()
    }

    /// The zero-copy promise: opening and viewing every uncompressed tensor copies and allocates
    /// nothing, and every view points into the mapping.
    @Test func openingAndViewingCopiesNothing() throws {
        let folder = TemporaryFolder()
        let path = folder.file("z.wpk")
        try writeSampleStore(to: path)
        let ((store, views), stats) = try Stats.measure {
            let store = try WeightStore(path: path)
            let views = try store.infos.filter(\.isMappable).map { try store.tensor($0.name) }
            return (store, views)
        }
        #expect(stats.bytesCopied == 0)
        #expect(stats.bytesAllocated == 0)
        #expect(views.count == 3)
        let mapping = store.file.bytes
        for (view, info) in zip(views, store.infos.filter(\.isMappable)) {
            #expect(view.storage.kind == .mapped)
            #expect(UnsafeRawPointer(view.baseAddress) == mapping.baseAddress! + info.offset)
            #expect(view.isContiguous)
            #expect(view.sharesStorage(with: views[0]))
        }
        // The same tensor asked twice is the same memory.
        #expect(try store.tensor("big").baseAddress == views[2].baseAddress)
    }

    /// The mapping outlives the store while a view exists, and goes with the last view.
    @Test func mappingLivesAsLongAsAnyView() throws {
        let folder = TemporaryFolder()
        let path = folder.file("l.wpk")
        let values = try writeSampleStore(to: path)
        weak var weakFile: MappedFile?
        var view: Tensor?
        do {
            let store = try WeightStore(path: path)
            weakFile = store.file
            view = try store.tensor("layer.bias")
        }
        #expect(weakFile != nil)
        #expect(view?.scalars == values["layer.bias"])
        view = nil
        #expect(weakFile == nil)
    }

    @Test func compressedTensorIsDecodedOnceAndCounted() throws {
        let folder = TemporaryFolder()
        let path = folder.file("c.wpk")
        let values = try writeSampleStore(to: path, compress: true)
        let store = try WeightStore(path: path)
        let info = try #require(store.info("big"))
        #expect(info.codec == .zstd)
        #expect(info.offset > store.info("ids")!.offset, "compressed tensors come after mappable ones")
        let (first, stats) = try Stats.measure { try store.tensor("big") }
        #expect(stats.bytesCopied == info.rawBytes)
        #expect(stats.copiedByReason == [.decode: info.rawBytes])
        #expect(stats.bytesAllocated == info.rawBytes)
        #expect(first.storage.kind == .heap)
        #expect(Int(bitPattern: first.baseAddress) % 64 == 0)
        #expect(first.scalars == values["big"])
        let (second, again) = try Stats.measure { try store.tensor("big") }
        #expect(again.bytesCopied == 0)
        #expect(second.sharesStorage(with: first))
    }

    @Test func halfTensorsKeptAsStoredWidenOnAccessAsACountedCopy() throws {
        let folder = TemporaryFolder()
        let path = folder.file("h.wpk")
        let halves: [Float16] = [1.5, -2, 0.25, 65504]
        let bf: [UInt16] = [0x3FC0, 0xC000]  // 1.5, -2 in bfloat16
        let writer = try WeightStoreWriter(path: path)
        try writer.addTensor(name: "h", dtype: .float16, shape: [4], source: .bytes(halves.withUnsafeBytes { Array($0) }))
        try writer.addTensor(name: "b", dtype: .bfloat16, shape: [2], source: .bytes(bf.withUnsafeBytes { Array($0) }))
        try writer.finish()
        let store = try WeightStore(path: path)
        let (h, stats) = try Stats.measure { try store.tensor("h") }
        #expect(h.scalars == [1.5, -2, 0.25, 65504])
        #expect(stats.copiedByReason == [.decode: 16])
        #expect(try store.tensor("b").scalars == [1.5, -2])
    }

    @Test func writerRefusesBadDeclarations() throws {
        let folder = TemporaryFolder()
        #expect(throws: WeightStoreError.invalidAlignment(100)) {
            try WeightStoreWriter(path: folder.file("x.wpk"), options: .init(alignment: 100))
        }
        let writer = try WeightStoreWriter(path: folder.file("x.wpk"))
        try writer.addTensor(name: "a", Tensor(shape: [1], scalars: [1]))
        #expect(throws: WeightStoreError.duplicateName("a")) { try writer.addTensor(name: "a", Tensor(shape: [1], scalars: [1])) }
        #expect(throws: WeightStoreError.self) { try writer.addTensor(name: "", Tensor(shape: [1], scalars: [1])) }
        #expect(throws: WeightStoreError.self) { try writer.setMetadata("", .string("x")) }
        #expect(folder.contents.isEmpty, "nothing is written before finish()")
    }

    /// A failing source leaves neither the target nor a temporary file; an existing target is
    /// left exactly as it was.
    @Test func failureLeavesNothingBehindAndKeepsAnExistingTarget() throws {
        struct Boom: Error {}
        let folder = TemporaryFolder()
        let path = folder.file("t.wpk")
        for wrongSize in [false, true] {
            let writer = try WeightStoreWriter(path: path)
            try writer.addTensor(name: "ok", Tensor(shape: [1000], scalars: floats(1000, seed: 4)))
            try writer.addTensor(name: "bad", dtype: .float32, shape: [4], source: TensorSource { emit in
                try [UInt8](repeating: 1, count: 8).withUnsafeBytes { try emit($0) }
                if !wrongSize { throw Boom() }
            })
            #expect(throws: (any Error).self) { try writer.finish() }
            #expect(folder.contents.isEmpty)
        }
        try writeSampleStore(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let writer = try WeightStoreWriter(path: path)
        try writer.addTensor(name: "bad", dtype: .float32, shape: [4], source: TensorSource { _ in throw Boom() })
        #expect(throws: Boom.self) { try writer.finish() }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(folder.contents == ["t.wpk"])
    }

    /// Views taken before a file is replaced keep reading the old bytes: the writer renames a
    /// new file over the old one instead of rewriting it in place.
    @Test func replacingAMappedFileDoesNotDisturbItsViews() throws {
        let folder = TemporaryFolder()
        let path = folder.file("m.wpk")
        let values = try writeSampleStore(to: path)
        let store = try WeightStore(path: path)
        let view = try store.tensor("layer.weight")
        let writer = try WeightStoreWriter(path: path)
        try writer.addTensor(name: "layer.weight", Tensor.zeros(shape: [3, 4]))
        try writer.finish()
        #expect(view.scalars == values["layer.weight"])
        #expect(try WeightStore(path: path).tensor("layer.weight").scalars == [Float](repeating: 0, count: 12))
    }

    @Test func stridedTensorsAreWrittenInRowMajorOrder() throws {
        let folder = TemporaryFolder()
        let base = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let transposed = Tensor(storage: base.storage, shape: [3, 2], strides: [1, 3])
        let writer = try WeightStoreWriter(path: folder.file("s.wpk"))
        try writer.addTensor(name: "t", transposed)
        try writer.finish()
        #expect(try WeightStore(path: folder.file("s.wpk")).tensor("t").scalars == [1, 4, 2, 5, 3, 6])
    }

    @Test func parallelStoresCountOnlyTheirOwnWork() async throws {
        let folder = TemporaryFolder()
        try writeSampleStore(to: folder.file("p.wpk"), compress: true)
        let path = folder.file("p.wpk")
        let raw = try WeightStore(path: path).info("big")!.rawBytes
        try await withThrowingTaskGroup(of: Stats.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try Stats.measure { _ = try WeightStore(path: path).tensor("big") }.1
                }
            }
            for try await stats in group { #expect(stats.bytesCopied == raw) }
        }
    }
}
