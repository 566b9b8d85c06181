import Testing
@testable import LazyTensor

/// The direct convolution for few input channels (conv/direct.c: one group, stride 1, K =
/// channels·kh·kw at most 27, at least 4 output channels and 8 output columns), at every
/// level, against the reference in Double. With a bias it adds its terms in another order than
/// the implicit GEMM (the bias first), so its bits differ from CPU.withImplicitGEMMConvolutions's.
@Suite struct DirectConvolutionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let x: [Int], w: [Int]
        var padding = (1, 1)
        var strided = false
        var bias = true
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "the digits CNN's first layer: 1 -> 16 channels, 8 x 8, pad 1", x: [40, 1, 8, 8], w: [16, 1, 3, 3]),
        Case(name: "3 colour planes, 13 wide through a transpose (a part vector), 20 channels (a part block of 8)",
             x: [3, 3, 9, 13], w: [20, 3, 3, 3], strided: true),
        Case(name: "a 5x5 window, one plane, pad 2, no bias", x: [2, 1, 11, 10], w: [4, 1, 5, 5], padding: (2, 2), bias: false),
        Case(name: "no padding, 2 planes, a 3x1 window", x: [5, 2, 6, 17], w: [9, 2, 3, 1], padding: (0, 0)),
    ]

    @Test(arguments: cases)
    func matchesTheReferenceAtEveryLevel(c: Case) {
        var x = Tensor.randn(shape: c.strided ? [c.x[0], c.x[1], c.x[3], c.x[2]] : c.x, seed: 61)
        if c.strided { x = x.permuted([0, 1, 3, 2]) }
        let w = Tensor.randn(shape: c.w, seed: 62).materialized()
        let b = c.bias ? Tensor.randn(shape: [c.w[0]], seed: 63) : nil
        // A new graph for every run: a tensor keeps what it evaluated to.
        func y() -> Tensor { conv2d(x, w, bias: b, padding: c.padding).relu() }
        let expected = Ref.conv2d(Ref(x), Ref(w), bias: b.map(Ref.init), stride: (1, 1), padding: c.padding, dilation: (1, 1),
                                  groups: 1).map { Swift.max(0, $0) }
        #expect(y().explain().contains("by direct"), "\(y().explain())")
        for level in CPU.availableLevels {
            let (out, stats) = CPU.withLevel(level) { Stats.measure { y().materialized() } }
            #expect(stats.kernels == 1 && stats.bytesCopied == 0 && stats.bytesAllocated == expected.values.count * 4, "\(level)")
            #expect(close(out, expected, atol: 1e-5, rtol: 1e-5), "\(level)")
            let implicit = CPU.withLevel(level) { CPU.withImplicitGEMMConvolutions { y().materialized() } }
            #expect(close(implicit, expected, atol: 1e-5, rtol: 1e-5), "\(level)")
            // Without a bias both add the same terms in the same order.
            if c.bias { #expect(zip(out.scalars, implicit.scalars).contains { $0 != $1 }, "\(level): the implicit GEMM's bits") }
        }
    }
}
