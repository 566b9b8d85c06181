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
        #expect(y().explain().contains("by direct, its ReLU in the kernel"), "\(y().explain())")
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

    /// Only an epilogue that is exactly relu(conv) goes into the kernel: another one runs after
    /// it, as before, and the explanation says which.
    @Test func otherEpiloguesRunAfterTheKernel() {
        let x = Tensor.randn(shape: [6, 1, 8, 8], seed: 64)
        let w = Tensor.randn(shape: [16, 1, 3, 3], seed: 65).materialized()
        let b = Tensor.randn(shape: [16], seed: 66)
        func y() -> Tensor { (conv2d(x, w, bias: b, padding: (1, 1)) * 2).relu() }
        let expected = Ref.conv2d(Ref(x), Ref(w), bias: Ref(b), stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
            .map { Swift.max(0, 2 * $0) }
        #expect(y().explain().contains("by direct") && !y().explain().contains("ReLU in the kernel"), "\(y().explain())")
        for level in CPU.availableLevels {
            let (out, stats) = CPU.withLevel(level) { Stats.measure { y().materialized() } }
            #expect(stats.kernels == 1 && stats.bytesCopied == 0, "\(level)")
            #expect(close(out, expected, atol: 1e-5, rtol: 1e-5), "\(level)")
        }
    }

    /// The fused ReLU keeps a NaN a NaN (as the unary kernel's does): exactly the outputs whose
    /// window holds the NaN pixel, in every channel, and nothing else.
    @Test func aNaNThroughTheFusedReLU() {
        var pixels = Tensor.randn(shape: [2, 1, 8, 8], seed: 67).scalars
        pixels[3 * 8 + 3] = .nan  // image 0, row 3, column 3
        let x = Tensor(shape: [2, 1, 8, 8], scalars: pixels)
        let w = Tensor.randn(shape: [8, 1, 3, 3], seed: 68).materialized()
        let b = Tensor.randn(shape: [8], seed: 69)
        for level in CPU.availableLevels {
            let out = CPU.withLevel(level) { conv2d(x, w, bias: b, padding: (1, 1)).relu().materialized() }.scalars
            for image in 0..<2 {
                for channel in 0..<8 {
                    for row in 0..<8 {
                        for column in 0..<8 {
                            let value = out[((image * 8 + channel) * 8 + row) * 8 + column]
                            let sees = image == 0 && (2...4).contains(row) && (2...4).contains(column)
                            #expect(value.isNaN == sees && (value.isNaN || value >= 0), "\(level): \([image, channel, row, column])")
                        }
                    }
                }
            }
        }
    }
}
