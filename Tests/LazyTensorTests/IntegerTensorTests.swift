import CKernels
import Foundation
import Testing
@testable import LazyTensor

/// Integer tensors: indices and ids held exactly (int32, int64), produced by argmax and topK,
/// consumed by take and gather, widened to float32 (counted) when arithmetic reads them.
@Suite(.serialized) struct IntegerTensorTests {
    @Test func argmaxIsExactBeyondFloatPrecision() {
        // 2^24 + 3 elements, the largest at 2^24 + 1: a float index would read 2^24.
        let n = (1 << 24) + 3
        let x = Tensor.arange(n).sin()
        let big = Tensor.concatenate([x.sliced(axis: 0, range: 0..<((1 << 24) + 1)), Tensor.full(shape: [1], value: 5),
                                      x.sliced(axis: 0, range: ((1 << 24) + 2)..<n)], axis: 0)
        let i = big.argmax(axis: 0)
        #expect(i.dtype == .int64)
        #expect(i.integers == [(1 << 24) + 1])
        #expect((-big).argmin(axis: 0).integers == [(1 << 24) + 1])
    }

    @Test(arguments: [false, true])
    func topK(baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        let x = Tensor.randn(shape: [3, 50], seed: 4)
        let r = x.scalars
        for (k, largest) in [(1, true), (5, true), (5, false), (50, true), (0, true), (3, false)] {
            let (values, indices) = x.topK(k, axis: 1, largest: largest)
            #expect(indices.dtype == .int64 && indices.shape == [3, k])
            var expected: [Int] = []
            for row in 0..<3 {
                let order = (0..<50).sorted { a, b in
                    let (u, v) = (r[row * 50 + a], r[row * 50 + b])
                    return u != v ? (largest ? u > v : u < v) : a < b
                }
                expected += order.prefix(k)
            }
            #expect(indices.integers == expected)
            #expect(values.scalars == zip(indices.integers, (0..<(3 * k)).map { $0 / Swift.max(k, 1) }).map { r[$1 * 50 + $0] })
        }
        // Ties go to the lower index; NaN counts as the largest (PyTorch's order).
        let t = Tensor(shape: [6], scalars: [1, 3, .nan, 3, 2, 1])
        #expect(t.topK(3).indices.integers == [2, 1, 3])
        #expect(t.topK(3, largest: false).indices.integers == [0, 5, 4])
        // Along a non-last axis, of a lazy chain: one kernel for the indices.
        let m = Tensor.randn(shape: [4, 3], seed: 1)
        let (_, stats) = Stats.measure { _ = (m * 2).topK(2, axis: 0).indices.materialized() }
        #expect(stats.kernels == 1)
        #expect((m * 2).topK(2, axis: 0).indices.integers == (m * 2).transposed().topK(2).indices.transposed().integers)
        #expect(throws: TensorError.self) { try Tensor.withErrors { _ = m.topK(5, axis: 0) } }
    }

    @Test func takeIsAnEmbeddingLookup() {
        let table = Tensor.randn(shape: [10, 4], seed: 2)
        let ids = Tensor(shape: [2, 3], integers: [0, 9, 3, 3, -1, 2])
        let (rows, stats) = Stats.measure { table.take(ids, axis: 0).materialized() }
        #expect(rows.shape == [2, 3, 4])
        #expect(rows.scalars == table.gatherRows([0, 9, 3, 3, 9, 2], indexShape: [2, 3]).materialized().scalars)
        #expect(stats.kernels == 1 && stats.copiedByReason[.gather] == 2 * 3 * 4 * 4, "\(stats)")
        // Rows of a table that are not contiguous (a transposed view) are picked element by element: the same values.
        let columns = Tensor(shape: [3], integers: [3, 0, -1])
        #expect(table.transposed().take(columns, axis: 0).scalars == table.transposed().materialized().take(columns, axis: 0).scalars)
        #expect(table.transposed().take(columns, axis: 0).scalars == [3, 0, 3].flatMap { c in (0..<10).map { table.scalars[$0 * 4 + c] } })
        // Along a middle axis, int32 indices, NumPy's shape rule.
        let x = Tensor.arange(24).reshaped([2, 3, 4])
        let picked = x.take(Tensor(shape: [2], integers: [2, 0], dtype: .int32), axis: 1)
        #expect(picked.shape == [2, 2, 4])
        #expect(picked.scalars == [8, 9, 10, 11, 0, 1, 2, 3, 20, 21, 22, 23, 12, 13, 14, 15])
        // An index out of range is a TensorError naming it, when the kernel runs.
        let error = #expect(throws: TensorError.self) {
            try Tensor.withErrors { _ = table.take(Tensor(shape: [1], integers: [10]), axis: 0).materialized() }
        }
        #expect(error?.reason == "index 10 is out of range for axis 0 of size 10")
        #expect(throws: TensorError.self) { try Tensor.withErrors { _ = table.take(Tensor.zeros(shape: [2]), axis: 0) } }
    }

    @Test func gatherAlongAnAxis() {
        // torch.gather(torch.tensor([[1, 2], [3, 4]]), 1, torch.tensor([[0, 0], [1, 0]])) = [[1, 1], [4, 3]]
        let t = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        #expect(t.gather(Tensor(shape: [2, 2], integers: [0, 0, 1, 0]), axis: 1).scalars == [1, 1, 4, 3])
        // dim 0: [[t[0][0], t[1][1]]] = [[1, 4]]
        #expect(t.gather(Tensor(shape: [1, 2], integers: [0, 1]), axis: 0).scalars == [1, 4])
        // The log-probability of each target token: a gather of one index per row.
        let logits = Tensor.randn(shape: [3, 7], seed: 5).logSoftmax()
        let targets = Tensor(shape: [3, 1], integers: [6, 0, 2])
        let got = logits.gather(targets, axis: 1).scalars
        let all = logits.scalars
        #expect(got == [all[6], all[7], all[16]])
    }

    @Test func arithmeticWidensOnceCounted() {
        let ids = Tensor(shape: [4], integers: [1, 2, 3, 1 << 40])
        let (y, stats) = Stats.measure { (ids * 2 + 1).materialized() }
        #expect(y.dtype == .float32)
        #expect(y.scalars == [3, 5, 7, Float(1 << 41) + 1])
        #expect(stats.kernels == 2 && stats.copiedByReason[.convert] == 16, "\(stats)")
        #expect((ids * 2).plan().kernelNames == ["convert int64 -> float32", "elementwise"])
        // Float to integer truncates toward zero, as NumPy's astype.
        #expect(Tensor(shape: [4], scalars: [1.9, -1.9, 0, 7]).converted(to: .int32).integers == [1, -1, 0, 7])
        #expect(throws: TensorError.self) {
            try Tensor.withErrors { _ = Tensor(shape: [1], scalars: [.nan]).converted(to: .int64).integers }
        }
        #expect(throws: TensorError.self) { try Tensor.withErrors { _ = Tensor.zeros(shape: [2]).integers } }
    }

    @Test func viewsOfIntegersStayIntegers() {
        let ids = Tensor(shape: [2, 3], integers: [0, 1, 2, 3, 4, 5])
        let t = ids.transposed()
        #expect(t.dtype == .int64 && t.sharesStorage(with: ids))
        let (c, stats) = Stats.measure { t.materialized() }
        #expect(c.dtype == .int64 && c.integers == [0, 3, 1, 4, 2, 5] && stats.bytesCopied == 48, "\(stats)")
        #expect(ids[1, 1...].integers == [4, 5])
        #expect(Tensor.arange(4, dtype: .int32).integers == [0, 1, 2, 3])
        // Same shapes, another dtype: another plan, each right.
        let a = Tensor(shape: [2], integers: [7, 8], dtype: .int32), b = Tensor(shape: [2], integers: [7, 8], dtype: .int64)
        #expect((a + 1).scalars == [8, 9] && (b + 1).scalars == [8, 9])
    }
}
