import CKernels
import Foundation
import Testing
@testable import LazyTensor

/// The ops a model author assembles tensors with, against the double reference or NumPy's
/// documented results, with their kernel and copy counts: splits and subscripts are views,
/// a stack is one kernel, a triangle is one fused select.
@Suite(.serialized) struct AssemblyOpsTests {
    @Test func arange() {
        #expect(Tensor.arange(5).scalars == [0, 1, 2, 3, 4])
        #expect(Tensor.arange(1, 2, step: 0.25).scalars == [1, 1.25, 1.5, 1.75])
        #expect(Tensor.arange(5, 0, step: -2).scalars == [5, 3, 1])
        #expect(Tensor.arange(0).shape == [0])
        // The count is exact where float32 no longer is (Float(2^24 + 3) rounds to 2^24 + 4).
        #expect(Tensor.arange((1 << 24) + 3).shape == [(1 << 24) + 3])
        #expect(throws: TensorError.self) { try Tensor.withErrors { _ = Tensor.arange(0, 1, step: 0) } }
    }

    @Test(arguments: [false, true])
    func triangles(baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        let x = Tensor.randn(shape: [2, 3, 4], seed: 1)
        let r = Ref(x)
        for k in [-1, 0, 2] {
            let (u, stats) = Stats.measure { x.upperTriangle(diagonal: k).materialized() }
            #expect(stats.kernels == 1)
            let l = x.lowerTriangle(diagonal: k).materialized()
            let idx = Ref.indices([2, 3, 4])
            #expect(u.scalars.map(Double.init) == idx.map { $0[2] - $0[1] >= k ? r.at($0) : 0 })
            #expect(l.scalars.map(Double.init) == idx.map { $0[2] - $0[1] <= k ? r.at($0) : 0 })
        }
        let inf = Float.infinity
        #expect(Tensor.causalMask(rows: 2, cols: 3).scalars == [0, -inf, -inf, 0, 0, -inf])
        #expect(Tensor.causalMask(rows: 2, cols: 3, diagonal: 1, value: -1).scalars == [0, 0, -1, 0, 0, 0])
    }

    @Test func stackIsOneKernel() {
        let a = Tensor.randn(shape: [2, 3], seed: 1), b = Tensor.randn(shape: [2, 3], seed: 2)
        for axis in [0, 1, 2, -1] {
            let (s, stats) = Stats.measure { Tensor.stacked([a, b * 2], axis: axis).materialized() }
            #expect(stats.kernels == 1)
            let a2 = (b * 2).materialized()
            let expected: [Int] = axis == 0 ? [2, 2, 3] : axis == 1 ? [2, 2, 3] : [2, 3, 2]
            #expect(s.shape == expected)
            let pos = axis < 0 ? axis + 3 : axis
            for (i, part) in [a, a2].enumerated() {
                #expect(s.sliced(axis: pos, range: i..<(i + 1)).squeezed(axis: pos).materialized().scalars == part.scalars)
            }
        }
        #expect(throws: TensorError.self) { try Tensor.withErrors { _ = Tensor.stacked([a, Tensor.zeros(shape: [3, 2])]) } }
    }

    @Test func splitsAndChunksAreViews() {
        let x = Tensor.randn(shape: [4, 10], seed: 3).materialized()
        let (parts, stats) = Stats.measure { x.split(sizes: [3, 0, 7], axis: 1) }
        #expect(stats.kernels == 0 && stats.bytesAllocated == 0)
        #expect(parts.map(\.shape) == [[4, 3], [4, 0], [4, 7]])
        #expect(parts.allSatisfy { $0.sharesStorage(with: x) })
        #expect(parts[2].scalars == x.sliced(axis: 1, range: 3..<10).scalars)
        // PyTorch: torch.arange(10).chunk(4) has sizes 3, 3, 3, 1; chunk(6) has 2 x 5.
        #expect(Tensor.arange(10).chunked(4).map(\.shape) == [[3], [3], [3], [1]])
        #expect(Tensor.arange(10).chunked(6).map(\.shape) == [[2], [2], [2], [2], [2]])
        #expect(x.chunked(2, axis: 0).map { $0.scalars } == [Array(x.scalars[0..<20]), Array(x.scalars[20..<40])])
        #expect(throws: TensorError.self) { try Tensor.withErrors { _ = x.split(sizes: [3, 3], axis: 1) } }
    }

    @Test func repeats() {
        let x = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        // NumPy: np.tile([[1, 2], [3, 4]], (2, 3)), and with a new leading axis.
        #expect(x.repeated([2, 3]).scalars == [1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4])
        #expect(x.repeated([2, 1, 1]).shape == [2, 2, 2])
        #expect(x.repeated([2, 1, 1]).scalars == [1, 2, 3, 4, 1, 2, 3, 4])
        // torch.repeat_interleave(x, 2, dim=1) and dim=0.
        #expect(x.repeatedElements(2, axis: 1).scalars == [1, 1, 2, 2, 3, 3, 4, 4])
        #expect(x.repeatedElements(2, axis: 0).scalars == [1, 2, 1, 2, 3, 4, 3, 4])
        // Consumed lazily: a repeat feeding an elementwise op is read through its index map.
        let (y, stats) = Stats.measure { (x.repeated([1, 2]) + 1).materialized() }
        #expect(stats.kernels == 1 && stats.bytesCopied == 0 && y.scalars == [2, 3, 2, 3, 4, 5, 4, 5])
    }

    @Test func subscriptsAreViewsWithNumPysMeaning() {
        let x = Tensor.arange(24).reshaped([2, 3, 4]).materialized()
        let (views, stats) = Stats.measure {
            [x[1], x[0..., 1], x[.ellipsis, -1], x[1, 1..<3, .stride(by: 2)], x[.newAxis, 0, ..<2], x[-1, ...1, 2...],
             x[0, .slice(nil, nil, step: -1), 0], x[0, 0, .slice(3, 0, step: -2)]]
        }
        #expect(stats.kernels == 0 && stats.bytesAllocated == 0)
        #expect(views.allSatisfy { $0.sharesStorage(with: x) })
        // Expected values as NumPy gives them for np.arange(24).reshape(2, 3, 4).
        #expect(views[0].shape == [3, 4] && views[0].scalars == (12..<24).map(Float.init))
        #expect(views[1].shape == [2, 4] && views[1].scalars == [4, 5, 6, 7, 16, 17, 18, 19])
        #expect(views[2].shape == [2, 3] && views[2].scalars == [3, 7, 11, 15, 19, 23])
        #expect(views[3].shape == [2, 2] && views[3].scalars == [16, 18, 20, 22])
        #expect(views[4].shape == [1, 2, 4] && views[4].scalars == [0, 1, 2, 3, 4, 5, 6, 7])
        #expect(views[5].shape == [2, 2] && views[5].scalars == [14, 15, 18, 19])
        #expect(views[6].shape == [3] && views[6].scalars == [8, 4, 0])
        #expect(views[7].shape == [2] && views[7].scalars == [3, 1])
        // On a lazy tensor the subscript is a view node read by the consumer's kernel.
        let (y, lazyStats) = Stats.measure { ((x * 2)[1, 2] + 1).materialized() }
        #expect(lazyStats.kernels == 1 && y.scalars == [41, 43, 45, 47])
        for bad in [{ _ = x[2] }, { _ = x[0, 0, 0, 0] }, { _ = x[.ellipsis, .ellipsis] }, { _ = x[0, .stride(by: 0)] }] as [() -> Void] {
            #expect(throws: TensorError.self) { try Tensor.withErrors { bad() } }
        }
    }

    @Test(arguments: [false, true])
    func batchNorm(baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        let x = Tensor.randn(shape: [2, 3, 4, 5], seed: 1)
        let mean = Tensor(shape: [3], scalars: [0.1, -0.2, 0.3]), variance = Tensor(shape: [3], scalars: [0.5, 1.5, 2])
        let weight = Tensor(shape: [3], scalars: [1, 2, -1]), bias = Tensor(shape: [3], scalars: [0, 0.5, 1])
        let (y, stats) = Stats.measure { x.batchNorm(mean: mean, variance: variance, weight: weight, bias: bias, eps: 1e-3).materialized() }
        #expect(stats.kernels == 1)
        let (m, v, w, b) = (Ref(mean), Ref(variance), Ref(weight), Ref(bias))
        let r = Ref(x)
        let expected = Ref(shape: x.shape, values: Ref.indices(x.shape).map { i in
            let c = i[1]
            return (r.at(i) - m.values[c]) / (v.values[c] + 1e-3).squareRoot() * w.values[c] + b.values[c]
        })
        #expect(close(y, expected, atol: 1e-5, rtol: 1e-5))
        // After a convolution it is the convolution's epilogue: one kernel.
        let conv = conv2d(x, Tensor.randn(shape: [3, 3, 3, 3], seed: 2), padding: (1, 1))
        #expect(conv.batchNorm(mean: mean, variance: variance).plan().kernelNames == ["conv2d + epilogue"])
    }
}
