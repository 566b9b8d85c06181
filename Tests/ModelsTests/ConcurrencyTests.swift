import Foundation
import Testing
@testable import Models
import WeightStore
import LazyTensor

/// One store, one model, many threads at once: every thread's vectors are bit-identical to those
/// of a single thread making the same call (the plan cache, the block pool, the store's decode
/// cache and the kernels' worker pool are shared by all of them).
@Suite struct ConcurrencyTests {
    @Test func manyThreadsEmbeddingOnOneStoreAgreeBitForBit() throws {
        let folder = TemporaryFolder()
        try pack([Fixtures.path("encoders/bert")], to: folder.file("m.wpk"))
        let store = try WeightStore(path: folder.file("m.wpk"))
        let model = try SentenceEncoder(store: store)
        let texts = (0..<24).map { i in String(repeating: "word\(i % 7) ", count: 1 + i % 9) + "end" }
        let expected = try model.embed(texts, batchSize: 5)
        let threads = 8
        let results = Locked<[Int: [[Float]]]>([:])
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            // The same call as the single thread's: a different batching would change the GEMM
            // shapes and so, legitimately, the last bits of a sum.
            guard let vectors = try? model.embed(texts, batchSize: 5) else { return }
            results.withLock { $0[t] = vectors }
        }
        let all = results.withLock { $0 }
        #expect(all.count == threads)
        for (t, vectors) in all {
            for (i, v) in vectors.enumerated() {
                #expect(v.map(\.bitPattern) == expected[i].map(\.bitPattern), "thread \(t), text \(i)")
            }
        }
    }
}
