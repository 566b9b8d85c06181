import CKernels
import Foundation
import Testing
@testable import LazyTensor

/// Kernel levels: what is detected, how it is capped, and that every level this machine has
/// gives the same answers. Levels the machine lacks are reported as skipped, by name.
@Suite(.serialized) struct CPUTests {
    @Test func theDetectedLevelFollowsTheFeatures() {
        let f = Set(CPU.features)
        let avx512 = ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(f.contains)
        let avx2 = f.contains("avx2") && f.contains("fma")
        #expect(CPU.detectedLevel == (avx512 && avx2 ? .avx512 : avx2 ? .avx2 : .baseline))
        #expect(CPU.availableLevels == CPU.Level.allCases.filter { $0 <= CPU.detectedLevel })
        #expect(CPU.level <= CPU.detectedLevel)
        print("CPU: \(CPU.model); features: \(CPU.features.joined(separator: " ")); levels run here: "
              + CPU.availableLevels.map(\.description).joined(separator: ", ")
              + "; skipped (not on this machine): " + CPU.Level.allCases.filter { $0 > CPU.detectedLevel }.map(\.description).joined(separator: ", "))
    }

    @Test func levelNamesParseAsWPACK_ISASpellsThem() {
        #expect(wk_parse_isa("baseline") == 0 && wk_parse_isa("avx2") == 1 && wk_parse_isa("avx512") == 2)
        #expect(wk_parse_isa("AVX2") == -2 && wk_parse_isa("sse4") == -2 && wk_parse_isa(nil) == -1)
    }

    @Test func withLevelCapsThisThreadOnly() {
        let top = CPU.level
        final class Seen: @unchecked Sendable { var level: CPU.Level? }
        let seen = Seen()
        CPU.withLevel(.baseline) {
            #expect(CPU.level == .baseline)
            #expect(CPU.kernelFamilies.allSatisfy { $0.inUse == .baseline })
            // Another thread, started while this one is capped, runs at the machine's level.
            let done = DispatchSemaphore(value: 0)
            let thread = Thread { seen.level = CPU.level; done.signal() }
            thread.start()
            done.wait()
        }
        #expect(seen.level == top)
        #expect(CPU.level == top)
    }

    /// One graph of every block primitive and row kernel, at every level the machine has:
    /// the levels agree within the stated tolerances, and the pool's helpers run the
    /// submitting thread's level (the graph is large enough to be split).
    @Test func everyAvailableLevelAgrees() {
        let x = Tensor.randn(shape: [256, 384], seed: 3)
        func graph() -> [Float] {
            ((x * 1.5 + 0.25).gelu().softmax(axis: -1).layerNorm() + x.sin() * x.exp().tanh()).sum(axes: [1]).materialized().scalars
        }
        let reference = CPU.withLevel(.baseline) { graph() }
        for level in CPU.availableLevels {
            let got = CPU.withLevel(level) { graph() }
            let worst = zip(got, reference).map { Swift.abs($0 - $1) / Swift.max(1, Swift.abs($1)) }.max() ?? 0
            #expect(worst < 1e-4, "\(level): \(worst)")
        }
    }

    @Test(.enabled(if: CPU.detectedLevel >= .avx512, "this machine has no AVX-512 (F, BW, DQ, VL)"))
    func avx512IsUsedWhereTheCPUHasIt() {
        #expect(CPU.level == .avx512 || CPU.requestedLevel.map { $0 < .avx512 } == true)
        let families = CPU.kernelFamilies.filter { $0.levels.contains(.avx512) }.map(\.name)
        #expect(families.count >= 4, "\(families)")
        if CPU.level == .avx512 {
            #expect(CPU.kernelFamilies.allSatisfy { $0.inUse == ($0.levels.contains(.avx512) ? .avx512 : .avx2) })
        }
    }

    /// Softmax rows compute their exponentials in registers at the vector levels: the values
    /// match libm's to a few ulp, and the edges keep their meaning at every level: a score of
    /// -inf weighs exactly 0, scores far below the largest underflow to 0 (gradually), a NaN
    /// makes its row NaN, and a row of -inf alone is NaN as it is in PyTorch.
    @Test func softmaxExponentialsAtEveryLevel() {
        let n = 70  // two vector blocks and a scalar tail at every width
        var rows: [[Float]] = [
            (0..<n).map { Float($0) * 1.7 - 60 },                                  // e^x from 1 down to ~1e-52
            (0..<n).map { $0 % 3 == 0 ? -.infinity : Float($0) * 0.01 },          // masked scores
            (0..<n).map { $0 == 40 ? .nan : Float($0) },
            [Float](repeating: -.infinity, count: n),
            (0..<n).map { Float($0) * 300 - 9000 },                                 // far apart: one 1, the rest 0
        ]
        rows.append(Tensor.randn(shape: [n], seed: 5).scalars.map { $0 * 30 })
        let x = Tensor(shape: [rows.count, n], scalars: rows.flatMap { $0 })
        let reference = CPU.withLevel(.baseline) { x.softmax(axis: -1).materialized().scalars }
        for level in CPU.availableLevels {
            let got = CPU.withLevel(level) { x.softmax(axis: -1).materialized().scalars }
            for (i, (g, r)) in zip(got, reference).enumerated() {
                if r.isNaN { #expect(g.isNaN, "\(level) element \(i)"); continue }
                #expect(Swift.abs(g - r) <= 4e-7 * Swift.max(r, 1e-30) || Swift.abs(g - r) < 1e-37, "\(level) element \(i): \(g) vs \(r)")
            }
            let masked = Array(got[n..<(2 * n)]), nans = Array(got[(2 * n)..<(4 * n)])
            let maskedAreZero = stride(from: 0, to: n, by: 3).allSatisfy { masked[$0] == 0 }
            #expect(maskedAreZero, "\(level)")
            #expect(nans.allSatisfy { $0.isNaN }, "\(level)")
        }
    }

    /// Every unary op with a vector version, the binary ops, select, RMS norm and log-softmax, on
    /// rows whose length is not a multiple of any vector width (the scalar tails run too): each
    /// level within 4 ulp-ish of the baseline (libm) values.
    @Test func everyElementwiseOpAgreesAtEveryLevel() {
        let x = Tensor.randn(shape: [37, 203], seed: 11) * 2
        let positive = x.abs() + 0.1
        func graphs() -> [[Float]] {
            [x.sigmoid(), x.silu(), x.erf(), positive.log(), x.cos(), x.sin(), x.exp(), x.tanh(), x.gelu(approximate: .tanh),
             x.gelu(), x.logSoftmax(axis: -1), x.rmsNorm(), Tensor.select(x.greater(positive - 0.5), x, positive), max(x, positive * 0.5),
             x.sum(axes: [1])].map { $0.materialized().scalars }
        }
        let reference = CPU.withLevel(.baseline) { graphs() }
        for level in CPU.availableLevels {
            let got = CPU.withLevel(level) { graphs() }
            for (index, (g, r)) in zip(got, reference).enumerated() {
                let worst = zip(g, r).map { Swift.abs($0 - $1) / Swift.max(1, Swift.abs($1)) }.max() ?? 0
                #expect(worst < 2e-5, "\(level), graph \(index): \(worst)")
            }
        }
    }
}
