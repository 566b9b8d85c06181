import Testing
@testable import LazyTensor

/// Graphs far deeper than any stack frame budget: every walk of the planner, the plan cache
/// and the nodes' own release is iterative, so depth costs time, not stack.
@Suite struct DeepGraphTests {
    static let depth = 100_000

    @Test func aHundredThousandElementwiseOpsEvaluate() {
        let x = Tensor(shape: [4], scalars: [1, 2, 3, 4])
        var y = x
        for i in 0..<Self.depth { y = i % 2 == 0 ? y + 1 : y * 1 }
        // Chains are cut into groups of at most Planner.maxGroup instructions.
        let kernels = y.plan().kernelCount
        #expect(kernels >= Self.depth / Planner.maxGroup)
        #expect(y.scalars == [50_001, 50_002, 50_003, 50_004])
    }

    @Test func aHundredThousandViewsAndBoundariesEvaluate() {
        var y = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        for i in 0..<Self.depth {
            switch i % 4 {
            case 0: y = y.transposed()
            case 1: y = y.reshaped([y.shape[1], y.shape[0]])
            case 2: y = y.softmax(axis: -1) * 0 + y  // a row kernel, its result multiplied away
            default: y = y.reshaped([y.shape[0], y.shape[1]])
            }
        }
        // Every four steps transpose [2, 3] and read the result back as [2, 3] (the softmax
        // term is multiplied away): the same permutation of the six values, 25,000 times.
        var expected: [Float] = [1, 2, 3, 4, 5, 6]
        for _ in 0..<(Self.depth / 4) { expected = (0..<6).map { expected[($0 % 2) * 3 + $0 / 2] } }
        #expect(y.shape == [2, 3])
        #expect(y.scalars == expected)
    }

    @Test func aDeepGraphIsReleasedWithoutRecursion() {
        // Built and dropped without evaluating: the release of its root frees every node.
        var y = Tensor(shape: [1], scalars: [0])
        for _ in 0..<(Self.depth * 3) { y = y + 1 }
        // Reaching here is the test: a recursive release of 300,000 nodes overflows the stack.
        y = Tensor(shape: [1], scalars: [1])
        #expect(y.scalars == [1])
    }

    @Test func aDeepGraphPlansTheSameTheSecondTime() {
        func build() -> Tensor {
            var y = Tensor(shape: [8], scalars: Array(repeating: 1, count: 8))
            for _ in 0..<20_000 { y = (y * 2).sqrt() }
            return y
        }
        // Both graphs are built before either is evaluated, so the second lookup follows the
        // first plan at once: the plan cache is shared by the whole process (64 plans), and
        // tests running beside this one (many of them, slowly, under TSan) must not get the
        // time to push the plan out between the two.
        let (g1, g2) = (build(), build())
        let (first, a) = Stats.measure { g1.materialized().scalars }
        let (second, b) = Stats.measure { g2.materialized().scalars }
        #expect(first == second)
        #expect(a.plans == 1 && b.plans == 0)
    }
}
