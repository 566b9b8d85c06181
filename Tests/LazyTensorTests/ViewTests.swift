import Testing
@testable import LazyTensor

/// Every view operation on a buffer: its shape, strides and layout flags, that it shares the
/// storage, that it runs nothing and copies nothing, and that its values are right.
@Suite struct ViewTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let make: @Sendable (Tensor) -> Tensor
        let refer: @Sendable (Ref) -> Ref
        let shape: [Int]
        let strides: [Int]
        let contiguous: Bool
        let columnContiguous: Bool
        let gapFree: Bool
        var testDescription: String { name }
    }

    // Base: [2, 3, 4] contiguous, strides [12, 4, 1].
    static let cases: [Case] = [
        Case(name: "permute 2,0,1", make: { $0.permuted([2, 0, 1]) }, refer: { $0.permuted([2, 0, 1]) },
             shape: [4, 2, 3], strides: [1, 12, 4], contiguous: false, columnContiguous: false, gapFree: true),
        Case(name: "permute 2,1,0 (Fortran)", make: { $0.permuted([2, 1, 0]) }, refer: { $0.permuted([2, 1, 0]) },
             shape: [4, 3, 2], strides: [1, 4, 12], contiguous: false, columnContiguous: true, gapFree: true),
        Case(name: "transposed", make: { $0.transposed() }, refer: { $0.permuted([0, 2, 1]) },
             shape: [2, 4, 3], strides: [12, 1, 4], contiguous: false, columnContiguous: false, gapFree: true),
        Case(name: "expand leading axis", make: { $0.expanded(to: [5, 2, 3, 4]) }, refer: { $0.broadcast(to: [5, 2, 3, 4]) },
             shape: [5, 2, 3, 4], strides: [0, 12, 4, 1], contiguous: false, columnContiguous: false, gapFree: false),
        Case(name: "expand size-1 axis", make: { $0.sliced(axis: 1, range: 1..<2).expanded(to: [2, 6, 4]) },
             refer: { $0.sliced(axis: 1, start: 1, count: 1, step: 1).broadcast(to: [2, 6, 4]) },
             shape: [2, 6, 4], strides: [12, 0, 1], contiguous: false, columnContiguous: false, gapFree: false),
        Case(name: "slice rows", make: { $0.sliced(axis: 1, range: 1..<3) }, refer: { $0.sliced(axis: 1, start: 1, count: 2, step: 1) },
             shape: [2, 2, 4], strides: [12, 4, 1], contiguous: false, columnContiguous: false, gapFree: false),
        Case(name: "slice with step", make: { $0.sliced(axis: 2, range: 0..<4, step: 2) },
             refer: { $0.sliced(axis: 2, start: 0, count: 2, step: 2) },
             shape: [2, 3, 2], strides: [12, 4, 2], contiguous: false, columnContiguous: false, gapFree: false),
        Case(name: "negative step", make: { $0.sliced(axis: 2, range: 0..<4, step: -1) },
             refer: { $0.sliced(axis: 2, start: 3, count: 4, step: -1) },
             shape: [2, 3, 4], strides: [12, 4, -1], contiguous: false, columnContiguous: false, gapFree: true),
        Case(name: "first batch (contiguous slice)", make: { $0.sliced(axis: 0, range: 1..<2) },
             refer: { $0.sliced(axis: 0, start: 1, count: 1, step: 1) },
             shape: [1, 3, 4], strides: [12, 4, 1], contiguous: true, columnContiguous: false, gapFree: true),
        Case(name: "reshape merge", make: { $0.reshaped([6, 4]) }, refer: { $0.reshaped([6, 4]) },
             shape: [6, 4], strides: [4, 1], contiguous: true, columnContiguous: false, gapFree: true),
        Case(name: "reshape -1", make: { $0.reshaped([2, -1]) }, refer: { $0.reshaped([2, 12]) },
             shape: [2, 12], strides: [12, 1], contiguous: true, columnContiguous: false, gapFree: true),
        Case(name: "reshape of a transpose that strides allow", make: { $0.permuted([1, 2, 0]).reshaped([12, 2]) },
             refer: { $0.permuted([1, 2, 0]).reshaped([12, 2]) },
             shape: [12, 2], strides: [1, 12], contiguous: false, columnContiguous: true, gapFree: true),
        Case(name: "unsqueeze", make: { $0.unsqueezed(axis: 1) }, refer: { $0.reshaped([2, 1, 3, 4]) },
             shape: [2, 1, 3, 4], strides: [12, 12, 4, 1], contiguous: true, columnContiguous: false, gapFree: true),
        Case(name: "squeeze", make: { $0.sliced(axis: 1, range: 2..<3).squeezed(axis: 1) },
             refer: { $0.sliced(axis: 1, start: 2, count: 1, step: 1).reshaped([2, 4]) },
             shape: [2, 4], strides: [12, 1], contiguous: false, columnContiguous: false, gapFree: false),
        Case(name: "flatten", make: { $0.flattened() }, refer: { $0.reshaped([24]) },
             shape: [24], strides: [1], contiguous: true, columnContiguous: true, gapFree: true),
        Case(name: "flatten from 1", make: { $0.flattened(from: 1) }, refer: { $0.reshaped([2, 12]) },
             shape: [2, 12], strides: [12, 1], contiguous: true, columnContiguous: false, gapFree: true),
        Case(name: "flip", make: { $0.flipped(axis: 0) }, refer: { $0.sliced(axis: 0, start: 1, count: 2, step: -1) },
             shape: [2, 3, 4], strides: [-12, 4, 1], contiguous: false, columnContiguous: false, gapFree: true),
    ]

    @Test(arguments: cases)
    func viewIsFreeAndRight(c: Case) {
        let base = Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        let (view, stats) = Stats.measure { c.make(base) }
        #expect(view.shape == c.shape)
        #expect(view.strides == c.strides)
        #expect(view.isRealized, "a view of a buffer is a buffer")
        #expect(view.isContiguous == c.contiguous)
        #expect(view.isColumnContiguous == c.columnContiguous)
        #expect(view.isGapFree == c.gapFree)
        #expect(view.sharesStorage(with: base))
        #expect(stats.kernels == 0 && stats.bytesCopied == 0 && stats.bytesAllocated == 0)
        #expect(view.scalars.map(Double.init) == c.refer(Ref(base)).values)
    }

    /// A contiguous view materialises to itself: same pointer, no kernel.
    @Test func contiguousViewMaterialisesToItself() {
        let base = Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        let view = base.sliced(axis: 0, range: 1..<2).reshaped([3, 4])
        let (m, stats) = Stats.measure { view.materialized() }
        #expect(m.baseAddress == view.baseAddress)
        #expect(m.sharesStorage(with: base))
        #expect(stats.kernels == 0 && stats.bytesAllocated == 0)
    }

    /// A strided view made contiguous is one copy kernel, counted by reason.
    @Test func stridedViewMaterialisesAsOneCountedCopy() {
        let base = Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        let t = base.transposed()
        let (m, stats) = Stats.measure { t.materialized() }
        #expect(m.isContiguous && !m.sharesStorage(with: base))
        #expect(stats.kernels == 1 && stats.bytesCopied == 96 && stats.copiedByReason == [.output: 96])
        let (c, requested) = Stats.measure { t.contiguous() }
        #expect(c.scalars == m.scalars)
        #expect(requested.copiedByReason == [.userRequest: 96])
        let (same, none) = Stats.measure { base.contiguous() }
        #expect(same.baseAddress == base.baseAddress && none.bytesCopied == 0)
    }

    /// A reshape strides cannot express stays lazy and is read through the consumer's indexing.
    @Test func inexpressibleReshapeStaysLazyAndIsFolded() {
        let base = Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        let (r, stats) = Stats.measure { base.transposed().reshaped([6, 4]) }
        #expect(!r.isRealized)
        #expect(stats.kernels == 0 && stats.bytesCopied == 0)
        let (y, run) = Stats.measure { (r * 2).materialized() }
        #expect(run.kernels == 1 && run.bytesCopied == 0 && run.bytesAllocated == 96)
        #expect(y.scalars.map(Double.init) == Ref(base).permuted([0, 2, 1]).reshaped([6, 4]).map { $0 * 2 }.values)
    }

    /// Views of lazy tensors are lazy too, and fold into the one kernel.
    @Test func viewsOfLazyTensorsFold() {
        let a = Tensor.randn(shape: [3, 4, 5], seed: 3)
        let lazy = (a * 3 + 1).permuted([2, 0, 1]).sliced(axis: 1, range: 0..<3, step: 2).reshaped([5, 2, 2, 2])
        #expect(!lazy.isRealized)
        let (y, stats) = Stats.measure { lazy.materialized() }
        #expect(stats.kernels == 1 && stats.bytesAllocated == 40 * 4)
        let expected = Ref(a).map { $0 * 3 + 1 }.permuted([2, 0, 1]).sliced(axis: 1, start: 0, count: 2, step: 2)
            .reshaped([5, 2, 2, 2])
        do { let ok = close(y, expected); #expect(ok) }
    }

    /// The mapping (or heap block) outlives the base tensor while a view exists.
    @Test func viewsKeepStorageAlive() {
        weak var weakStorage: Storage?
        var view: Tensor?
        do {
            let base = Tensor(shape: [4], scalars: [1, 2, 3, 4])
            weakStorage = base.storage
            view = base.sliced(axis: 0, range: 1..<3)
        }
        #expect(weakStorage != nil)
        #expect(view?.scalars == [2, 3])
        view = nil
        #expect(weakStorage == nil)
    }
}
