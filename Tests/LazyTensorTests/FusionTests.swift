import Foundation
import Testing
@testable import LazyTensor

/// Fused expressions: values against the double reference, and the exact number of kernels and
/// bytes each evaluation runs and allocates. Every allocation is named in the case.
@Suite struct FusionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let build: @Sendable ([Tensor]) -> Tensor
        let refer: @Sendable ([Ref]) -> Ref
        let kernels: Int
        /// Bytes allocated by evaluation: the output, plus the intermediates the rules require.
        let allocated: Int
        var atol = 1e-5
        var testDescription: String { name }
    }

    /// Inputs: x [2,3,4,5], b [5], c [3], m [4,5], v [2,1,4,1].
    static func inputs() -> [Tensor] {
        [Tensor.randn(shape: [2, 3, 4, 5], seed: 11), Tensor.randn(shape: [5], seed: 12), Tensor.randn(shape: [3], seed: 13),
         Tensor.randn(shape: [4, 5], seed: 14), Tensor.randn(shape: [2, 1, 4, 1], seed: 15)]
    }

    static let out = 120 * 4  // bytes of a [2,3,4,5] (or permuted) float result

    static let cases: [Case] = [
        Case(name: "seed: ((x.permute(0,2,3,1) + b.reshape(1,1,1,-1)) * 2).relu()",
             build: { t in ((t[0].permuted([0, 2, 3, 1]) + t[2].reshaped([1, 1, 1, -1])) * 2).relu() },
             refer: { r in Ref.zip(r[0].permuted([0, 2, 3, 1]), r[2].reshaped([1, 1, 1, 3]), +).map { Swift.max(0, $0 * 2) } },
             kernels: 1, allocated: out),
        Case(name: "broadcast at the front of a chain", build: { t in (t[1] * t[0] - 1).tanh() },
             refer: { r in Ref.zip(r[1], r[0], *).map { Foundation.tanh($0 - 1) } }, kernels: 1, allocated: out),
        Case(name: "two broadcasts and a transpose in the middle",
             build: { t in ((t[0] + t[4]).transposed() * t[3].transposed()).exp() },
             refer: { r in Ref.zip(Ref.zip(r[0], r[4], +).permuted([0, 1, 3, 2]), r[3].permuted([1, 0]), *).map(Foundation.exp) },
             kernels: 1, allocated: out, atol: 1e-4),
        Case(name: "cheap shared node is recomputed", build: { t in let s = t[0] * 2 + 1; return s * s - s },
             refer: { r in r[0].map { let s = $0 * 2 + 1; return s * s - s } }, kernels: 1, allocated: out),
        Case(name: "expensive shared node across a transpose is stored once",
             build: { t in let e = (t[0].exp() + 1).log(); return e + e.permuted([0, 1, 3, 2]).reshaped([2, 3, 4, 5]) },
             refer: { r in let e = r[0].map { Foundation.log(Foundation.exp($0) + 1) }
                 return Ref.zip(e, e.permuted([0, 1, 3, 2]).reshaped([2, 3, 4, 5]), +) },
             kernels: 2, allocated: 2 * out, atol: 1e-5),
        Case(name: "reduction with a prologue", build: { t in (t[0] * t[4] + 1).squared().sum(axes: [1, 3]) },
             refer: { r in Ref.zip(r[0], r[4], *).map { ($0 + 1) * ($0 + 1) }.reduce(axes: [1, 3], 0, +) },
             kernels: 1, allocated: 8 * 4, atol: 1e-4),
        Case(name: "column reduction (innermost axis kept)", build: { t in t[0].abs().max(axes: [0, 2]) },
             refer: { r in r[0].map(Swift.abs).reduce(axes: [0, 2], -.infinity, Swift.max) }, kernels: 1, allocated: 15 * 4),
        Case(name: "mean keeping dims, then broadcast back (two kernels)",
             build: { t in t[0] - t[0].mean(axes: [3], keepingDims: true) },
             refer: { r in Ref.zip(r[0], r[0].reduce(axes: [3], keep: true, 0, +).map { $0 / 5 }, -) },
             kernels: 2, allocated: out + 24 * 4),
        Case(name: "softmax over a middle axis of a lazy input", build: { t in (t[0] * 0.5 + t[3]).softmax(axis: 1) },
             refer: { r in Ref.zip(r[0].map { $0 * 0.5 }, r[3], +).rows(axis: 1, softmaxRef) }, kernels: 1, allocated: out),
        Case(name: "log-softmax of a transposed buffer", build: { t in t[0].transposed().logSoftmax(axis: -1) },
             refer: { r in r[0].permuted([0, 1, 3, 2]).rows(axis: 3) { row in
                 let m = row.max()!; let s = Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +)); return row.map { $0 - m - s } } },
             kernels: 1, allocated: out),
        Case(name: "layerNorm on a permuted axis with weight and bias",
             build: { t in t[0].permuted([0, 3, 2, 1]).layerNorm(axis: 3, eps: 1e-5, weight: t[2], bias: t[2] * 0 + 0.5) },
             refer: { r in Ref.zip(Ref.zip(r[0].permuted([0, 3, 2, 1]).rows(axis: 3) { layerNormRef($0, 1e-5) }, r[2], *),
                                   Ref(shape: [1], values: [0.5]), +) },
             kernels: 2, allocated: out + 12, atol: 1e-4),
        Case(name: "argmax of a lazy chain", build: { t in (t[0] * t[1]).argmax(axis: 2) },
             refer: { r in Ref.zip(r[0], r[1], *).rows(axis: 2) { row in
                 let i = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!; return row.map { _ in Double(i) } }
                 .sliced(axis: 2, start: 0, count: 1, step: 1).reshaped([2, 3, 5]) },
             kernels: 1, allocated: 30 * 8),  // int64 indices
        Case(name: "reduction result viewed without keepingDims (no extra kernel)", build: { t in t[0].sum(axes: [3]) },
             refer: { r in r[0].reduce(axes: [3], 0, +) }, kernels: 1, allocated: 24 * 4),
        Case(name: "where with a comparison", build: { t in Tensor.select(t[0].greater(t[1]), t[0], t[1] * 2) },
             refer: { r in Ref.zip(r[0], r[1], { $0 > $1 ? $0 : $1 * 2 }) }, kernels: 1, allocated: out),
        Case(name: "concatenate a lazy chain and a transposed view",
             build: { t in Tensor.concatenate([t[3] + 1, t[0].sliced(axis: 0, range: 0..<1).reshaped([3, 4, 5]).sliced(axis: 0, range: 0..<1).reshaped([5, 4]).transposed()], axis: 0) },
             refer: { r in let a = r[3].map { $0 + 1 }
                 let b = r[0].reshaped([120]).sliced(axis: 0, start: 0, count: 20, step: 1).reshaped([5, 4]).permuted([1, 0])
                 return Ref(shape: [8, 5], values: a.values + b.values) },
             kernels: 1, allocated: 40 * 4),
        Case(name: "pad a lazy chain", build: { t in (t[3] * 2).padded([(1, 0), (2, 1)], value: -1) },
             refer: { r in Ref(shape: [5, 8], values: Ref.indices([5, 8]).map { i in
                 (i[0] >= 1 && i[1] >= 2 && i[1] < 7) ? r[3].at([i[0] - 1, i[1] - 2]) * 2 : -1 }) },
             kernels: 1, allocated: 40 * 4),
        Case(name: "embedding lookup then scale", build: { t in t[3].gatherRows([3, 0, 3], indexShape: [3]) * 2 },
             refer: { r in Ref(shape: [3, 5], values: [3, 0, 3].flatMap { row in (0..<5).map { r[3].at([row, $0]) * 2 } }) },
             kernels: 2, allocated: 2 * 15 * 4),
    ]

    @Test(arguments: cases)
    func fusedExpression(c: Case) {
        let t = Self.inputs()
        let y = c.build(t)
        let plan = y.plan()
        let (result, stats) = Stats.measure { y.materialized() }
        #expect(stats.kernels == c.kernels, "\n\(plan)")
        #expect(plan.kernelCount == c.kernels)
        #expect(stats.bytesAllocated == c.allocated, "\n\(plan)")
        #expect(plan.bytesAllocated == c.allocated)
        #expect(result.isContiguous)
        #expect(close(result, c.refer(t.map(Ref.init)), atol: c.atol, rtol: 1e-5), "\(result.scalars.prefix(8))")
    }

    /// Asking twice computes once.
    @Test func resultIsKept() {
        let y = (Tensor.randn(shape: [64], seed: 1) * 2).exp()
        let first = y.materialized()
        let (second, stats) = Stats.measure { y.materialized() }
        #expect(stats.kernels == 0)
        #expect(second.baseAddress == first.baseAddress)
    }

    /// Intermediates are released when their last consumer has run: peak is below the sum.
    @Test func intermediatesAreReleasedEarly() {
        var h = Tensor.randn(shape: [256, 64], seed: 2)
        for _ in 0..<6 { h = (h - h.mean(axes: [1], keepingDims: true)).tanh() }
        let (_, stats) = Stats.measure { h.materialized() }
        #expect(stats.kernels == 12)
        #expect(stats.bytesAllocated == 6 * (256 * 64 + 256) * 4)
        #expect(stats.peakBytes <= 2 * 256 * 64 * 4 + 256 * 4 + 64)
    }

    /// The group cap: a very long chain is split into capped kernels, each fused.
    @Test func longChainsAreSplitAtTheCap() {
        var y = Tensor.randn(shape: [100], seed: 3)
        var r = Ref(y)
        for i in 0..<200 { y = y * 0.99 + Float(i % 3) * 0.001; r = r.map { $0 * 0.99 + Double(i % 3) * 0.001 } }
        let plan = y.plan()
        #expect(plan.kernelCount > 1 && plan.kernelCount < 40)
        do { let ok = close(y.materialized(), r, atol: 1e-4); #expect(ok) }
    }

    @Test func explainNamesKernelsAndRunsNothing() {
        let x = Tensor.randn(shape: [2, 3, 4, 5], seed: 1), b = Tensor.randn(shape: [3], seed: 2)
        let y = ((x.permuted([0, 2, 3, 1]) + b.reshaped([1, 1, 1, -1])) * 2).relu()
        let (text, stats) = Stats.measure { y.explain() }
        #expect(stats.kernels == 0 && stats.bytesAllocated == 0)
        #expect(text.contains("1 kernel, 480 B allocated, 0 B copied"))
        #expect(text.contains("relu(mul(add("))
        #expect(!y.isRealized)
    }
}

func softmaxRef(_ row: [Double]) -> [Double] {
    let m = row.max()!
    let e = row.map { Foundation.exp($0 - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}

func layerNormRef(_ row: [Double], _ eps: Double) -> [Double] {
    let mean = row.reduce(0, +) / Double(row.count)
    let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(row.count)
    return row.map { ($0 - mean) / Foundation.sqrt(variance + eps) }
}
