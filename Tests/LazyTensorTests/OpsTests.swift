import CKernels
import Foundation
import Testing
@testable import LazyTensor

/// Each operation against the double-precision reference, on both the AVX2 and the baseline
/// kernels. Tolerances, stated per op:
/// - exact (0 ulp): neg, abs, relu, add, sub, mul, max, min, comparisons, where;
/// - correctly rounded (≤ 0.5 ulp): div, sqrt, square (IEEE operations);
/// - ≤ 4 ulp: exp, log, tanh, erf, pow (glibc libmvec / libm);
/// - composite functions (sigmoid, silu, gelu, rsqrt, reciprocal): ≤ 8 ulp or 1e-6 absolute
///   near zero, since they chain two rounded operations;
/// - reductions: |error| ≤ n·eps·Σ|x| (float accumulation in 16 lanes);
/// - softmax, layerNorm, rmsNorm: 1e-6 absolute on values of order 1.
@Suite(.serialized) struct OpsTests {
    static func input(_ n: Int, seed: UInt64, scale: Float = 3) -> Tensor {
        let t = Tensor.randn(shape: [n], seed: seed)
        return (t * scale).materialized()
    }

    struct UnaryCase: Sendable, CustomTestStringConvertible {
        let name: String
        let op: @Sendable (Tensor) -> Tensor
        let ref: @Sendable (Double) -> Double
        let ulps: Double
        var atol: Double = 0
        var positive = false
        var testDescription: String { name }
    }

    static let unaryCases: [UnaryCase] = [
        UnaryCase(name: "neg", op: { -$0 }, ref: { -$0 }, ulps: 0),
        UnaryCase(name: "abs", op: { $0.abs() }, ref: { Swift.abs($0) }, ulps: 0),
        UnaryCase(name: "relu", op: { $0.relu() }, ref: { Swift.max(0, $0) }, ulps: 0),
        UnaryCase(name: "square", op: { $0.squared() }, ref: { $0 * $0 }, ulps: 0.5),
        UnaryCase(name: "sqrt", op: { $0.sqrt() }, ref: { Foundation.sqrt($0) }, ulps: 0.5, positive: true),
        UnaryCase(name: "exp", op: { $0.exp() }, ref: { Foundation.exp($0) }, ulps: 4),
        UnaryCase(name: "log", op: { $0.log() }, ref: { Foundation.log($0) }, ulps: 4, positive: true),
        UnaryCase(name: "tanh", op: { $0.tanh() }, ref: { Foundation.tanh($0) }, ulps: 4),
        UnaryCase(name: "erf", op: { $0.erf() }, ref: { Foundation.erf($0) }, ulps: 4),
        UnaryCase(name: "rsqrt", op: { $0.rsqrt() }, ref: { 1 / Foundation.sqrt($0) }, ulps: 8, positive: true),
        UnaryCase(name: "reciprocal", op: { $0.reciprocal() }, ref: { 1 / $0 }, ulps: 8),
        UnaryCase(name: "sigmoid", op: { $0.sigmoid() }, ref: { 1 / (1 + Foundation.exp(-$0)) }, ulps: 8, atol: 1e-7),
        UnaryCase(name: "silu", op: { $0.silu() }, ref: { $0 / (1 + Foundation.exp(-$0)) }, ulps: 8, atol: 1e-6),
        UnaryCase(name: "gelu (erf)", op: { $0.gelu() }, ref: { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }, ulps: 8, atol: 1e-6),
        UnaryCase(name: "sin", op: { $0.sin() }, ref: { Foundation.sin($0) }, ulps: 4, atol: 1e-7),
        UnaryCase(name: "cos", op: { $0.cos() }, ref: { Foundation.cos($0) }, ulps: 4, atol: 1e-7),
        UnaryCase(name: "sin of large arguments (RoPE angles)", op: { ($0 * 1000).sin() }, ref: { Foundation.sin(Double(Float($0) * 1000)) },
                  ulps: 4, atol: 1e-7),
        UnaryCase(name: "floor", op: { ($0 * 10).floor() }, ref: { Foundation.floor(Double(Float($0) * 10)) }, ulps: 0),
        UnaryCase(name: "hardsigmoid", op: { ($0 * 4).hardsigmoid() }, ref: { Swift.min(Swift.max(Double(Float($0) * 4) / 6 + 0.5, 0), 1) },
                  ulps: 1, atol: 1e-7),
        UnaryCase(name: "hardswish", op: { ($0 * 4).hardswish() },
                  ref: { let x = Double(Float($0) * 4); return x * Swift.min(Swift.max(x + 3, 0), 6) / 6 }, ulps: 2, atol: 1e-7),
        UnaryCase(name: "relu6", op: { ($0 * 5).relu6() }, ref: { Swift.min(Swift.max(Double(Float($0) * 5), 0), 6) }, ulps: 0),
        UnaryCase(name: "clamped", op: { $0.clamped(min: -0.5, max: 0.25) }, ref: { Swift.min(Swift.max($0, -0.5), 0.25) }, ulps: 0),
        UnaryCase(name: "gelu (tanh)", op: { $0.gelu(approximate: .tanh) },
                  ref: { 0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) },
                  ulps: 8, atol: 1e-6),
    ]

    @Test(arguments: unaryCases, [false, true])
    func unary(c: UnaryCase, baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        var x = Self.input(3000, seed: 7)
        if c.positive { x = (x.abs() + 1e-3).materialized() }
        let y = c.op(x).materialized()
        let r = Ref(x).map(c.ref)
        let worst = Swift.zip(y.scalars, r.values).map { a, b -> Double in
            let err = Swift.abs(Double(a) - b)
            if err <= c.atol { return 0 }
            return err / Double(Float(b).ulp == 0 ? Float.leastNonzeroMagnitude : Float(b).ulp)
        }.max()!
        #expect(worst <= c.ulps, "\(c.name): \(worst) ulp")
    }

    @Test(arguments: [false, true])
    func binaryAndComparisons(baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        let a = Self.input(2000, seed: 1), b = Self.input(2000, seed: 2)
        let ra = Ref(a), rb = Ref(b)
        do { let ok = close((a + b).materialized(), Ref.zip(ra, rb, +), atol: 0, rtol: 6e-8); #expect(ok) }
        do { let ok = close((a - b).materialized(), Ref.zip(ra, rb, -), atol: 0, rtol: 6e-8); #expect(ok) }
        do { let ok = close((a * b).materialized(), Ref.zip(ra, rb, *), atol: 0, rtol: 6e-8); #expect(ok) }
        do { let ok = close((a / b).materialized(), Ref.zip(ra, rb, /), atol: 0, rtol: 6e-8); #expect(ok) }
        do { let ok = close(max(a, b).materialized(), Ref.zip(ra, rb, Swift.max), atol: 0, rtol: 0); #expect(ok) }
        do { let ok = close(min(a, b).materialized(), Ref.zip(ra, rb, Swift.min), atol: 0, rtol: 0); #expect(ok) }
        do { let ok = close(a.less(b).materialized(), Ref.zip(ra, rb) { $0 < $1 ? 1 : 0 }, atol: 0, rtol: 0); #expect(ok) }
        do { let ok = close(a.greaterEqual(b).materialized(), Ref.zip(ra, rb) { $0 >= $1 ? 1 : 0 }, atol: 0, rtol: 0); #expect(ok) }
        do { let ok = close(a.equal(a).materialized(), ra.map { _ in 1 }, atol: 0, rtol: 0); #expect(ok) }
        let p = (a.abs() + 0.5).pow(1.7).materialized()
        #expect(maxULP(p, ra.map { Foundation.pow(Swift.abs($0) + 0.5, 1.7) }) <= 4)
        do { let ok = close((2 - a / 4).materialized(), ra.map { 2 - $0 / 4 }, atol: 0, rtol: 1.2e-7); #expect(ok) }
    }

    @Test(arguments: [false, true])
    func reductions(baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        let x = Tensor.randn(shape: [7, 33, 129], seed: 9)
        let r = Ref(x)
        for axes in [[0], [1], [2], [0, 2], [1, 2], [0, 1, 2]] {
            let n = Double(axes.reduce(1) { $0 * x.shape[$1] })
            let bound = n * 1.2e-7 * r.values.map(Swift.abs).max()! * 4
            #expect(close(x.sum(axes: axes).materialized(), r.reduce(axes: axes, 0, +), atol: bound, rtol: 0), "sum \(axes)")
            do { let ok = close(x.mean(axes: axes).materialized(), r.reduce(axes: axes, 0, +).map { $0 / n }, atol: bound / n, rtol: 0); #expect(ok) }
            do { let ok = close(x.max(axes: axes).materialized(), r.reduce(axes: axes, -.infinity, Swift.max), atol: 0, rtol: 0); #expect(ok) }
            do { let ok = close(x.min(axes: axes).materialized(), r.reduce(axes: axes, .infinity, Swift.min), atol: 0, rtol: 0); #expect(ok) }
        }
        let am = x.argmax(axis: 1).materialized()
        let expected = r.rows(axis: 1) { row in let i = row.indices.max { row[$0] < row[$1] }!; return row.map { _ in Double(i) } }
            .sliced(axis: 1, start: 0, count: 1, step: 1).reshaped([7, 129])
        do { let ok = close(am, expected, atol: 0, rtol: 0); #expect(ok) }
        #expect(x.sum().materialized().shape == [])
        #expect(Tensor.zeros(shape: [3, 0]).sum(axes: [1]).scalars == [0, 0, 0])
    }

    @Test(arguments: [false, true])
    func rowOperations(baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        let x = (Tensor.randn(shape: [5, 300], seed: 4) * 4 + 2).materialized()
        let w = Tensor.randn(shape: [300], seed: 5), b = Tensor.randn(shape: [300], seed: 6)
        let r = Ref(x)
        do { let ok = close(x.softmax().materialized(), r.rows(axis: 1, softmaxRef), atol: 1e-7, rtol: 1e-5); #expect(ok) }
        let ls = r.rows(axis: 1) { row in let m = row.max()!; let s = Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +)); return row.map { $0 - m - s } }
        do { let ok = close(x.logSoftmax().materialized(), ls, atol: 1e-5, rtol: 1e-6); #expect(ok) }
        let ln = Ref.zip(Ref.zip(r.rows(axis: 1) { layerNormRef($0, 1e-12) }, Ref(w), *), Ref(b), +)
        do { let ok = close(x.layerNorm(eps: 1e-12, weight: w, bias: b).materialized(), ln, atol: 2e-6, rtol: 1e-5); #expect(ok) }
        let rms = Ref.zip(r.rows(axis: 1) { row in
            let ms = row.map { $0 * $0 }.reduce(0, +) / Double(row.count); return row.map { $0 / Foundation.sqrt(ms + 1e-6) } }, Ref(w), *)
        do { let ok = close(x.rmsNorm(eps: 1e-6, weight: w).materialized(), rms, atol: 2e-6, rtol: 1e-5); #expect(ok) }
        // A row of -inf except one value, and a huge range: softmax stays finite.
        let edge = Tensor(shape: [1, 3], scalars: [-.infinity, 0, -.infinity]).softmax().scalars
        #expect(edge == [0, 1, 0])
        #expect(Tensor(shape: [1, 2], scalars: [1000, -1000]).softmax().scalars == [1, 0])
    }

    @Test func randnIsDeterministicAndNormal() {
        let a = Tensor.randn(shape: [20000], seed: 42).scalars
        #expect(a == Tensor.randn(shape: [20000], seed: 42).scalars)
        #expect(a != Tensor.randn(shape: [20000], seed: 43).scalars)
        let mean = a.reduce(0, +) / Float(a.count)
        let variance = a.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(a.count)
        #expect(Swift.abs(mean) < 0.03 && Swift.abs(variance - 1) < 0.05)
    }
}
