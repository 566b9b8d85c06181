import Testing
@testable import LazyTensor

/// Elementwise kernels whose last axis is short run tiles of several rows per pass over the
/// program (Evaluator.run with rows): every kind of leaf in such a tile, and a last tile that
/// is only partly full, give the values of a loop over the elements.
@Suite struct ShortRowTests {
    @Test func tilesOfShortRowsEqualAnElementLoop() {
        let (n, rows, inner) = (4, 300, 7)  // tiles of 146 rows: 146, 146 and 8
        let a = Tensor.randn(shape: [n, rows, inner], seed: 1)
        let perRow = Tensor.randn(shape: [rows, 1], seed: 2)        // broadcast along the last axis
        let perColumn = Tensor.randn(shape: [inner], seed: 3)       // broadcast along the rows
        let transposed = Tensor.randn(shape: [n, inner, rows], seed: 4).transposed(1, 2)  // strides (.., 1, rows)
        let reshaped = Tensor.randn(shape: [inner, rows], seed: 5).transposed().reshaped([rows * inner]).reshaped([rows, inner])
        let (y, stats) = Stats.measure { (a * perRow + perColumn - transposed * reshaped).materialized().scalars }
        let (av, pr, pc, tv, rv) = (a.scalars, perRow.scalars, perColumn.scalars, Tensor.randn(shape: [n, inner, rows], seed: 4).scalars,
                                   Tensor.randn(shape: [inner, rows], seed: 5).scalars)
        var expected: [Float] = []
        for b in 0..<n {
            for r in 0..<rows {
                for c in 0..<inner {
                    let product = tv[(b * inner + c) * rows + r] * rv[c * rows + r]
                    expected.append(av[(b * rows + r) * inner + c] * pr[r] + pc[c] - product)
                }
            }
        }
        #expect(y == expected)
        // One kernel reads every leaf where it lies, the reshaped one element by element.
        #expect(stats.kernels == 1 && stats.bytesCopied == 0, "\(stats)")
    }

    /// A reduction over a leading axis (column mode) accumulates tiles of its short kept rows:
    /// 300 rows of 5 in tiles of 204 and 96, a lazy chain and a transposed input read in them.
    @Test func columnReductionsOverShortRows() {
        let (r, rows, inner) = (6, 300, 5)
        let x = Tensor.randn(shape: [r, rows, inner], seed: 8)
        let t = Tensor.randn(shape: [r, inner, rows], seed: 9)
        let summed = (x * 2 + t.transposed(1, 2)).sum(axes: [0])
        #expect(summed.explain().contains("(columns)"))
        let sum = summed.materialized().scalars
        let largest = x.max(axes: [0]).materialized().scalars
        let (xv, tv) = (x.scalars, t.scalars)
        var expectedSum: [Float] = [], expectedMax: [Float] = []
        for i in 0..<rows {
            for j in 0..<inner {
                var s: Float = 0, m = -Float.infinity
                for k in 0..<r {
                    s += xv[(k * rows + i) * inner + j] * 2 + tv[(k * inner + j) * rows + i]
                    m = Swift.max(m, xv[(k * rows + i) * inner + j])
                }
                expectedSum.append(s)
                expectedMax.append(m)
            }
        }
        #expect(zip(sum, expectedSum).allSatisfy { Swift.abs($0 - $1) <= 1e-5 * Swift.max(1, Swift.abs($1)) })
        #expect(largest == expectedMax)
    }

    /// A rotation's shape: 9 heads of 32 features, two halves concatenated, in one tile each.
    @Test func aConcatenationOfShortRows() {
        let x = Tensor.randn(shape: [1, 9, 1, 64], seed: 6), cos = Tensor.randn(shape: [1, 1, 1, 32], seed: 7)
        let x1 = x[.ellipsis, ..<32], x2 = x[.ellipsis, 32...]
        let y = Tensor.concatenate([x1 * cos - x2, x2 * cos + x1], axis: -1).materialized().scalars
        let (xv, cv) = (x.scalars, cos.scalars)
        var expected: [Float] = []
        for h in 0..<9 {
            for i in 0..<32 { expected.append(xv[h * 64 + i] * cv[i] - xv[h * 64 + 32 + i]) }
            for i in 0..<32 { expected.append(xv[h * 64 + 32 + i] * cv[i] + xv[h * 64 + i]) }
        }
        #expect(y == expected)
    }
}
