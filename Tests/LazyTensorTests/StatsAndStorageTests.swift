import Testing
@testable import LazyTensor

@Suite struct StatsAndStorageTests {
    @Test func heapStorageIsAlignedAndCounted() {
        let (storage, stats) = Stats.measure { Storage(allocatingByteCount: 1000) }
        #expect(Int(bitPattern: storage.baseAddress) % 64 == 0)
        #expect(stats.bytesAllocated == 1000)
        #expect(stats.peakBytes == 1000)
        #expect(stats.bytesCopied == 0)
    }

    @Test func peakCountsOnlyWhatIsAliveAtOnce() {
        let (_, stats) = Stats.measure {
            for _ in 0..<4 { _ = Storage(allocatingByteCount: 256) }
        }
        #expect(stats.bytesAllocated == 1024)
        #expect(stats.peakBytes == 256)
    }

    @Test func nestedScopesSeeInnerWorkButNotSiblings() {
        let (inner, outer) = Stats.measure { () -> Stats in
            Stats.recordKernel()
            return Stats.measure { Stats.recordCopy(bytes: 12, reason: .pack) }.1
        }
        #expect(inner.kernels == 0 && inner.bytesCopied == 12 && inner.copiedByReason == [.pack: 12])
        #expect(outer.kernels == 1 && outer.bytesCopied == 12)
        // Outside any scope nothing is recorded and nothing traps.
        Stats.recordKernel()
    }

    @Test func parallelScopesAreIsolated() async {
        await withTaskGroup(of: Stats.self) { group in
            for i in 1...16 {
                group.addTask { Stats.measure { for _ in 0..<i { Stats.recordKernel() } }.1 }
            }
            var seen: [Int] = []
            for await s in group { seen.append(s.kernels) }
            #expect(seen.sorted() == Array(1...16))
        }
    }

    @Test func tensorLayoutFlags() {
        let t = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(t.isContiguous && t.strides == [3, 1])
        let transposed = Tensor(storage: t.storage, shape: [3, 2], strides: [1, 3])
        #expect(!transposed.isContiguous)
        #expect(transposed.sharesStorage(with: t))
        #expect(transposed.scalars == [1, 4, 2, 5, 3, 6])
        let broadcast = Tensor(storage: t.storage, offset: 3, shape: [4, 3], strides: [0, 1])
        #expect(broadcast.scalars == [4, 5, 6, 4, 5, 6, 4, 5, 6, 4, 5, 6])
        #expect(!Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]).sharesStorage(with: t))
        #expect(Tensor(storage: t.storage, shape: [1, 3, 1], strides: [99, 1, 7]).isContiguous)
        #expect(Tensor.zeros(shape: [0, 4]).isContiguous)
    }
}
