import Testing
@testable import LazyTensor

/// `print(tensor)` shows the shape, dtype, strides and state, then NumPy-like values.
@Suite struct DescriptionTests {
    @Test func smallTensors() {
        let t = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(String(describing: t) == """
            Tensor(shape: [2, 3], dtype: float32, strides: [3, 1], view of heap storage, contiguous)
            [[1., 2., 3.],
             [4., 5., 6.]]
            """)
        #expect(String(describing: t.transposed() * 0.5) == """
            Tensor(shape: [3, 2], dtype: float32, strides: [2, 1], lazy, evaluated for this preview, contiguous)
            [[0.5000, 2.0000],
             [1.0000, 2.5000],
             [1.5000, 3.0000]]
            """)
        #expect(String(describing: t.transposed()).hasPrefix("Tensor(shape: [3, 2], dtype: float32, strides: [1, 3], view of heap storage)"))
        #expect(String(describing: Tensor(shape: [3], integers: [101, 7592, 102])) == """
            Tensor(shape: [3], dtype: int64, strides: [1], view of heap storage, contiguous)
            [ 101, 7592,  102]
            """)
        #expect(String(describing: Tensor(Float(2.5))).hasSuffix("\n2.5000"))
        #expect(String(describing: Tensor(shape: [3], scalars: [1e-6, 1, .nan])).hasSuffix("\n[1.0000e-06, 1.0000e+00,        nan]"))
        #expect(String(describing: Tensor.zeros(shape: [2, 0])).hasSuffix("\n[]"))
    }

    @Test func longTensorsAreSummarised() {
        let text = String(describing: Tensor.arange(2000).reshaped([2, 1000]))
        #expect(text.hasSuffix("""
            [[   0.,    1.,    2., ...,  997.,  998.,  999.],
             [1000., 1001., 1002., ..., 1997., 1998., 1999.]]
            """), "\(text)")
        let rank3 = String(describing: Tensor.zeros(shape: [2, 2, 2]))
        #expect(rank3.hasSuffix("[[[0., 0.],\n  [0., 0.]],\n\n [[0., 0.],\n  [0., 0.]]]"), "\(rank3)")
    }
}
