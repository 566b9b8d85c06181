import CKernels
import Testing
@testable import LazyTensor

/// An epilogue that adds something to a matmul's product is split: the addend is written into
/// the output first and the GEMM accumulates onto it (β = 1), through every GEMM path (the
/// BLAS, the small-rows kernel on both builds, gemv for one row). Only a sum with the product
/// itself is split (splitsOnlyASumWithTheProduct).
@Suite(.serialized) struct AccumulateEpilogueTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let rows: Int
        let make: @Sendable (Tensor, Tensor, Tensor, Tensor) -> Tensor
        let ref: @Sendable (Ref, Ref, Ref) -> Ref  // (product, bias broadcast, residual)
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "x·Wᵀ + b (the whole epilogue absorbed), 40 rows: BLAS", rows: 40,
             make: { x, w, b, _ in matmul(x, w.transposed()) + b }, ref: { p, b, _ in Ref.zip(p, b, +) }),
        Case(name: "b + x·Wᵀ, 7 rows: small-rows kernel", rows: 7,
             make: { x, w, b, _ in b + matmul(x, w.transposed()) }, ref: { p, b, _ in Ref.zip(b, p, +) }),
        Case(name: "gelu(x·Wᵀ + b + r), 16 rows", rows: 16,
             make: { x, w, b, r in (matmul(x, w.transposed()) + b + r).gelu() },
             ref: { p, b, r in Ref.zip(Ref.zip(p, b, +), r, +).map { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) } }),
        Case(name: "one row: gemv accumulates", rows: 1,
             make: { x, w, b, _ in matmul(x, w.transposed()) + b }, ref: { p, b, _ in Ref.zip(p, b, +) }),
    ]

    @Test(arguments: cases, [false, true])
    func accumulates(c: Case, baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        let (k, n) = (24, 20)
        let x = Tensor.randn(shape: [c.rows, k], seed: 1), w = Tensor.randn(shape: [n, k], seed: 2)
        let b = Tensor.randn(shape: [n], seed: 3), r = Tensor.randn(shape: [c.rows, n], seed: 4)
        let (y, stats) = Stats.measure { c.make(x, w, b, r).materialized() }
        // One kernel, one buffer: the output (the addend is written straight into it).
        #expect(stats.kernels == 1 && stats.bytesAllocated == c.rows * n * 4 && stats.bytesCopied == 0, "\(stats)")
        let p = Ref.matmul(Ref(x), Ref(w).permuted([1, 0]))
        let expected = c.ref(p, Ref(b).broadcast(to: [c.rows, n]), Ref(r))
        let ok = close(y, expected, atol: 1e-4, rtol: 1e-5)
        #expect(ok)
    }

    /// Few rows times a weight read in place, large enough to be split over the workers: each
    /// worker writes the addend under its own columns and applies the rest of the epilogue to
    /// them. Column blocks of 16 split 300 columns unevenly (144 + 156), the residual is read
    /// through a transposed view (its column stride is not 1), the rows come from two batches
    /// merged into one GEMM; a residual read through a reshape that strides cannot express
    /// takes the whole-output path. Values against the double reference on both builds.
    @Test(arguments: [false, true])
    func columnEpiloguesPerWorker(baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        let (batches, rows, k, n) = (2, 8, 256, 300)
        let x = Tensor.randn(shape: [batches, rows, k], seed: 11), w = Tensor.randn(shape: [n, k], seed: 12)
        let b = Tensor.randn(shape: [n], seed: 13)
        let rT = Tensor.randn(shape: [batches, n, rows], seed: 14).transposed()  // [2, 8, 300], column stride 8
        let rReshaped = rT.reshaped([batches * rows, n])  // merges axes of strides 2400 and 1: not strided
        let p = Ref.matmul(Ref(x), Ref(w).permuted([1, 0]).broadcast(to: [batches, k, n]))
        let bias = Ref(b).broadcast(to: [batches, rows, n])
        let gelu = { (v: Double) in 0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot())) }
        let cases: [(String, Tensor, Ref)] = [
            ("gelu(x·Wᵀ + b)", (matmul(x, w.transposed()) + b).gelu(), Ref.zip(p, bias, +).map(gelu)),
            ("x·Wᵀ + b + rᵀ", matmul(x, w.transposed()) + b + rT, Ref.zip(Ref.zip(p, bias, +), Ref(rT), +)),
            ("relu(x·Wᵀ) * 2", matmul(x, w.transposed()).relu() * 2, p.map { Swift.max($0, 0) * 2 }),
            ("x·Wᵀ + r reshaped", matmul(x.reshaped([batches * rows, k]), w.transposed()) + rReshaped,
             Ref.zip(p.reshaped([batches * rows, n]), Ref(rT).reshaped([batches * rows, n]), +)),
        ]
        for (name, y, expected) in cases {
            let (out, stats) = Stats.measure { y.materialized() }
            #expect(stats.kernels == 1 && stats.bytesAllocated == batches * rows * n * 4 && stats.bytesCopied == 0, "\(name): \(stats)")
            let ok = close(out, expected, atol: 1e-3, rtol: 1e-4)
            #expect(ok, "\(name)")
        }
    }

    @Test func splitsOnlyASumWithTheProduct() {
        let x = Tensor.randn(shape: [3, 4], seed: 5), w = Tensor.randn(shape: [4, 2], seed: 6), b = Tensor.randn(shape: [2], seed: 7)
        func epilogue(_ t: Tensor) -> (Program, Node)? {
            let plan = Planner(roots: [t.node])
            guard let kernel = plan.kernels.last, kernel.programs.count > 2, case .matmul(let product) = kernel.kind else { return nil }
            return (kernel.programs[2], product)
        }
        let (sum, p1) = epilogue(matmul(x, w) + b)!
        let split = Executor.splitAddend(sum, product: p1)
        #expect(split != nil && split!.1 == nil)  // the addend is everything: nothing left after the GEMM
        let (scaled, p2) = epilogue(matmul(x, w) * 2 + b)!
        #expect(Executor.splitAddend(scaled, product: p2) == nil)  // the product is scaled first
        let (outer, p3) = epilogue((matmul(x, w) + b).relu())!
        let rest = Executor.splitAddend(outer, product: p3)
        #expect(rest != nil && rest!.1?.instructions.count == 2)  // relu(load product) remains
    }
}

import Foundation
